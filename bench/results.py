"""JSON results: what was measured, on which machine, from which commit, with which settings.

Every bench writes one file ``<out>/<bench>.json`` shaped as::

    {"bench": "batching", "machine": {...}, "settings": {...}, "results": {...}}
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import subprocess
import time
from dataclasses import asdict, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = ("voicechat", "tritonclient", "nvidia-pytriton", "onnxruntime", "onnxruntime-gpu",
             "torch", "numpy")


def _run(cmd: list[str], cwd: str | os.PathLike[str] | None = None) -> str | None:
    if not shutil.which(cmd[0]):
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=cwd)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def gpus() -> list[dict[str, str]]:
    """One entry per GPU that ``nvidia-smi`` lists (none without the tool)."""
    out = _run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                "--format=csv,noheader"])
    found = []
    for line in (out or "").splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            found.append({"name": parts[0], "memory": parts[1], "driver": parts[2]})
    return found


def git_commit(repo: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    commit = _run(["git", "rev-parse", "HEAD"], cwd=repo)
    dirty = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo)
    return {"commit": commit, "dirty": bool(dirty) if dirty is not None else None}


def machine_info() -> dict[str, Any]:
    packages = {}
    for name in _PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            packages[name] = metadata.version(name)
    memory_gb = None
    with contextlib.suppress(ValueError, OSError, AttributeError):
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "gpus": gpus(),
        "git": git_commit(Path(__file__).resolve().parent),
        "packages": packages,
    }


def to_jsonable(value: Any) -> Any:
    """Dataclasses, objects with ``to_json``, tuples and NaN turned into plain JSON."""
    if hasattr(value, "to_json"):
        return to_jsonable(value.to_json())
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_results(out_dir: str | os.PathLike[str], bench: str, settings: dict[str, Any],
                  results: Any) -> Path:
    """Write ``<out_dir>/<bench>.json``; returns its path."""
    path = Path(out_dir) / f"{bench}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"bench": bench, "machine": machine_info(), "settings": to_jsonable(settings),
                "results": to_jsonable(results)}
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def report_table(header: str, table: str, output: str | None) -> None:
    """Print a bench's markdown table under its header; append both, dated, to ``output``."""
    import time

    print(header)
    print(table)
    if output:
        with open(output, "a", encoding="utf-8") as fh:
            fh.write(f"\n{time.strftime('%Y-%m-%d')}: {header}\n\n{table}\n")
