"""The README and the docs pages: the configuration table is generated from the settings
and must stay true, the README stays a short front page, and every link resolves."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from scripts.update_readme_settings import CONFIGURATION, README, current_table, settings_table

DOCS = README.parent / "docs"
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_configuration_table_matches_the_settings_module() -> None:
    assert current_table(CONFIGURATION.read_text()) == settings_table(), (
        "docs/configuration.md's table is stale: run `python -m scripts.update_readme_settings`")


def test_readme_names_the_two_commands_and_ci_runs_the_test_one() -> None:
    text = README.read_text()
    assert "make run" in text and "make test" in text
    assert "make test" in (README.parent / ".ci" / "run").read_text()


def test_readme_is_a_short_front_page_linking_every_docs_page() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    assert "docs/configuration.md" in text and "docs/README.md" in text
    contents = (DOCS / "README.md").read_text()
    for page in sorted(DOCS.glob("*.md")):
        if page.name != "README.md":
            assert f"]({page.name})" in contents, f"docs/README.md does not list {page.name}"


@cache
def _prose(page: Path) -> str:
    """The page without its code blocks (read once however many links name it)."""
    return re.sub(r"```.*?```", "", page.read_text(), flags=re.S)


def _links(page: Path) -> list[str]:
    return [target for target in _LINK.findall(_prose(page))
            if "://" not in target and not target.startswith("mailto:")]


def _anchors(page: Path) -> set[str]:
    """The ids GitHub gives the page's headings: lower case, punctuation dropped, spaces
    to hyphens (a repeated heading's -1, -2 suffixes are not needed by any link yet)."""
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
            for heading in re.findall(r"^#+ (.*)$", _prose(page), flags=re.M)}


def _broken(page: Path, target: str) -> bool:
    path, _, anchor = target.partition("#")
    linked = page.parent / path if path else page
    if not linked.exists():
        return True
    return bool(anchor) and linked.suffix == ".md" and anchor not in _anchors(linked)


def test_every_relative_link_in_the_readme_and_docs_resolves() -> None:
    """Files and the headings a link names (a renamed heading breaks links silently)."""
    pages = [README, *sorted(DOCS.rglob("*.md"))]
    broken = [f"{page.relative_to(README.parent)}: {target}" for page in pages
              for target in _links(page) if _broken(page, target)]
    assert broken == []
