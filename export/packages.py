"""Where a weights package is installed, found without importing it (some packages'
``__init__`` import what ``--no-deps`` left out, or load libraries that clash with ours)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from export.errors import SourceError


def package_dir(module: str) -> Path | None:
    """The directory of the installed top-level ``module``; None when it is not installed."""
    spec = importlib.util.find_spec(module)
    return Path(spec.origin).parent if spec and spec.origin else None


def require_package_dir(module: str, install: str) -> Path:
    """:func:`package_dir`, or a SourceError saying how to install it (``install``: the
    pip requirement)."""
    directory = package_dir(module)
    if directory is None:
        raise SourceError(f"the {install.split('==')[0]} package is not installed "
                          f"(pip install --no-deps {install})")
    return directory
