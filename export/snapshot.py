"""Self-contained versions: the code a version's ``model.py`` imports travels with it.

Export copies the version's ``model.py`` and every module of this package that it
imports, directly or through other modules (found by reading their ``import``
statements, not by running them), into ``<version>/code/export/…``. Each
``triton_model.py`` puts that folder first on ``sys.path`` before its first
``export`` import, so a served version runs the code it was exported and proved with;
upgrading the package or rolling back never mixes one version's weights with another
version's code, and the manifest's hashes cover the snapshot like any other file.

Third-party imports (numpy, onnxruntime, …) are not copied: the manifest records their
versions (``tool_versions``).
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

PACKAGE = "export"
CODE_DIR = "code"
PACKAGE_ROOT = Path(__file__).resolve().parent


def _module_file(module: str) -> Path | None:
    """The file of ``export.a.b`` in this package (module or package), if any."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_ROOT.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE_ROOT).with_suffix("")
    parts = [PACKAGE, *relative.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path) -> set[str]:
    """Every ``export.*`` module ``path`` names in an import (absolute or relative),
    including ``from export.x import y`` where ``y`` is itself a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    if not path.is_relative_to(PACKAGE_ROOT):
        package = ""  # a model file outside the package: no relative imports into it
    elif path.name == "__init__.py":
        package = _module_name(path)
    else:
        package = _module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level and not package:
                continue
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == PACKAGE}


def closure(entry: Path) -> list[Path]:
    """The package files ``entry`` needs at import time: imported modules, the
    ``__init__.py`` of every package on their way, and what those import in turn."""
    seen: set[Path] = set()
    pending = [entry.resolve()]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _imported_modules(path):
            parts = module.split(".")
            for depth in range(1, len(parts) + 1):  # parents' __init__ run first
                found = _module_file(".".join(parts[:depth]))
                if found is not None and found not in seen:
                    pending.append(found)
    return sorted(p for p in seen if p.is_relative_to(PACKAGE_ROOT))


def snapshot(entry: Path, version_dir: Path) -> list[Path]:
    """Copy ``entry``'s package closure to ``<version_dir>/code/export/…``; returns the
    copied files (relative to the version)."""
    target = version_dir / CODE_DIR
    copied = []
    for source in closure(entry):
        if source == entry.resolve():
            continue  # it is the version's model.py
        destination = target / PACKAGE / source.relative_to(PACKAGE_ROOT)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
        copied.append(destination.relative_to(version_dir))
    return copied
