"""The orchestrator's process tree, read from ``/proc``: which process is which (Triton,
each Python backend stub by its model) and what each holds (resident memory, open file
descriptors). The soak samples these to show what grows."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path


def _status(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text()
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            kids += [int(p) for p in (task / "children").read_text().split()]
    return kids


def process_tree(root: int) -> dict[str, int]:
    """name -> pid for the orchestrator, tritonserver and each stub (by model)."""
    named: dict[str, int] = {"orchestrator": root}
    pending = _children(root)
    while pending:
        pid = pending.pop()
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            exe = Path(cmdline[0].decode(errors="replace")).name
            if exe == "tritonserver":
                named["tritonserver"] = pid
            elif "python_backend_stub" in exe:
                model = re.search(rb"/([^/]+)/(\d+)/model\.py", b" ".join(cmdline))
                name = f"{model[1].decode()}:{model[2].decode()}" if model else str(pid)
                named[f"stub {name}"] = pid
            else:
                named[f"{exe} {pid}"] = pid
            pending += _children(pid)
    return named


def serve_process() -> int:
    """The pid of the only ``voicechat serve`` here; SystemExit naming the choice if not."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            words = entry.read_bytes().split(b"\0")
            if b"serve" in words and any(w.endswith((b"voicechat", b"orchestrator"))
                                         for w in words):
                found.append(int(entry.parent.name))
    if len(found) != 1:
        raise SystemExit(f"voicechat bench soak: {len(found)} `voicechat serve` processes "
                         f"here ({found}); pass --pid")
    return found[0]


def rss_mb(pid: int) -> float:
    try:
        return int(_status(pid)["VmRSS"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return float("nan")


def open_fds(pid: int) -> int:
    try:
        return len(list(Path(f"/proc/{pid}/fd").iterdir()))
    except OSError:
        return -1
