"""The README's configuration table is generated from the settings and must stay true."""

from __future__ import annotations

from scripts.update_readme_settings import README, current_table, settings_table


def test_configuration_table_matches_the_settings_module() -> None:
    assert current_table(README.read_text()) == settings_table(), (
        "README configuration table is stale: run `python -m scripts.update_readme_settings`")


def test_readme_names_the_two_commands_and_ci_runs_the_test_one() -> None:
    text = README.read_text()
    assert "make run" in text and "make test" in text
    assert "make test" in (README.parent / ".ci" / "run").read_text()
