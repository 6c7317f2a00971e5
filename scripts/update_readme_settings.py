"""Regenerate the configuration table of docs/configuration.md from orchestrator/settings.py
(the README links to that page)."""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CONFIGURATION = ROOT / "docs" / "configuration.md"
_BLOCK = re.compile(r"(<!-- settings-table:start.*?-->\n)(.*?)(\n<!-- settings-table:end -->)",
                    re.S)


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    rows += [f"| `{var}` | `{value}` | {doc} |"
             for var, value, doc in Settings.from_env({}).describe()]
    return "\n".join(rows)


def current_table(text: str) -> str | None:
    match = _BLOCK.search(text)
    return match.group(2) if match else None


def main() -> None:
    text = CONFIGURATION.read_text()
    CONFIGURATION.write_text(_BLOCK.sub(lambda m: m.group(1) + settings_table() + m.group(3),
                                        text))


if __name__ == "__main__":
    main()
