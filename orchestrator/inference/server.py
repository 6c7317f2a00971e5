"""The embedded Triton server: the ``tritonserver`` binary shipped in the nvidia-pytriton wheel.

Started as a child process on loopback ports with the model repository in explicit
model-control mode, so models load, unload and swap versions at run time with no
restart. See TOOLCHAIN.md for the environment it needs (the python backend stub
finds its Python from ``python3`` on PATH and ignores PYTHONPATH).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


class TritonStartError(RuntimeError):
    """The embedded Triton server could not be started or did not become ready."""


def _pytriton_root() -> Path:
    try:
        import pytriton
    except ImportError as exc:  # pragma: no cover - dependency of the distribution
        raise TritonStartError("nvidia-pytriton is not installed: it ships the tritonserver "
                               "binary used by the embedded default") from exc
    return Path(pytriton.__file__).parent / "tritonserver"


def prepare_backends(target: Path) -> Path:
    """Copy the python backend and this interpreter's stub into a folder we own."""
    root = _pytriton_root()
    python_dir = target / "python"
    stub_src = (root / "python_backend_stubs" / f"{sys.version_info.major}."
                f"{sys.version_info.minor}" / "triton_python_backend_stub")
    if not stub_src.is_file():
        raise TritonStartError(f"no Triton python stub for Python {sys.version_info[:2]} in "
                               f"{stub_src.parent.parent}")
    stamp = python_dir / ".source"
    if stamp.is_file() and stamp.read_text() == str(stub_src):
        return target
    shutil.rmtree(python_dir, ignore_errors=True)
    shutil.copytree(root / "backends" / "python", python_dir,
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(stub_src, python_dir / "triton_python_backend_stub")
    stamp.write_text(str(stub_src))
    return target


MALLOC_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024), "MALLOC_ARENA_MAX": "2"}
"""For tritonserver and the model processes it starts (they inherit its environment).

32 MiB, glibc's own ceiling for the threshold, fixed: buffers above it go back to the
system when freed (a long request's peak is not kept), those below are reused from the
heap. At 256 KiB every intermediate tensor of Kokoro and Whisper was a fresh mmap with
page faults on each request: the served Korean voice took 660 ms for one word against
370 ms at 32 MiB, Korean STT p50 285 against 187 ms (docs/benchmarks/reliability.md)."""


def server_environment() -> dict[str, str]:
    """Environment for tritonserver: bundled libs, and this venv's python3 first on PATH."""
    root = _pytriton_root()
    libs = root.parent.parent / "nvidia_pytriton.libs"
    env = dict(os.environ)
    parts = [sysconfig.get_config_var("LIBDIR") or "", str(libs), env.get("LD_LIBRARY_PATH", "")]
    env["LD_LIBRARY_PATH"] = ":".join(p for p in parts if p)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    # glibc raises its mmap threshold after big frees, so later big tensors come from the
    # heap and their memory is kept after one long request; a fixed threshold returns
    # every large buffer to the system when it is freed (the soak bench measures it).
    for name, value in MALLOC_ENVIRONMENT.items():
        env.setdefault(name, value)
    return env


@dataclass
class EmbeddedTriton:
    """A tritonserver child process serving ``repository``."""

    repository: Path
    work_dir: Path
    grpc_port: int = 8001
    http_port: int = 8010
    metrics_port: int = 8012
    models: list[str] = field(default_factory=list)
    """Models loaded at start-up (explicit mode loads nothing else)."""
    log_verbose: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "tritonserver.log"

    def command(self) -> list[str]:
        backends = prepare_backends(self.work_dir / "backends")
        cmd = [
            str(_pytriton_root() / "bin" / "tritonserver"),
            f"--model-repository={self.repository.resolve()}",
            f"--backend-directory={backends.resolve()}",
            "--model-control-mode=explicit",
            "--http-address=127.0.0.1", f"--http-port={self.http_port}",
            "--grpc-address=127.0.0.1", f"--grpc-port={self.grpc_port}",
            "--metrics-address=127.0.0.1", f"--metrics-port={self.metrics_port}",
            "--allow-gpu-metrics=false",
            "--exit-timeout-secs=10",
            f"--log-verbose={self.log_verbose}",
        ]
        cmd += [f"--load-model={m}" for m in self.models]
        return cmd

    def start(self, timeout_s: float = 300.0) -> None:
        """Start and wait until ready. Call it from a thread that outlives the server:
        the child is signalled when the thread that started it ends."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        cmd = self.command()
        log.info("starting tritonserver", extra={"grpc": self.grpc_url, "models": self.models})
        out = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                        env=server_environment(), cwd=self.work_dir,
                                        start_new_session=True,
                                        preexec_fn=_die_with_parent)
        out.close()
        self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise TritonStartError(f"tritonserver exited with {self.process.returncode} "
                                       f"while starting (log: {self.log_path}); last log "
                                       f"lines:\n{self.tail_log()}")
            if self.is_ready():
                log.info("tritonserver ready", extra={"grpc": self.grpc_url})
                return
            time.sleep(0.25)
        self.stop()
        raise TritonStartError(f"tritonserver not ready after {timeout_s:.0f}s (log: "
                               f"{self.log_path}); last log lines:\n{self.tail_log()}")

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.http_url}/v2/health/ready", timeout=1) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def tail_log(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM (Triton drains in-flight requests), then SIGKILL what is left of the
        process group: python backend stubs can outlive a server that exits in a hurry."""
        proc, self.process = self.process, None
        if proc is None:
            return
        members = group_members(proc.pid)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        kill_group(proc.pid, members)
        log.info("tritonserver stopped")

    def __enter__(self) -> EmbeddedTriton:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def group_members(pgid: int) -> list[int]:
    """Processes of a process group, from /proc (empty where there is no /proc)."""
    members = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = entry.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # after the name: state, ppid, pgrp
                members.append(int(entry.parent.name))
    return members


def kill_group(pgid: int, members: list[int]) -> None:
    """SIGKILL a process group and reap those of ``members`` that are our children (a
    subreaper adopts a dead server's stubs), so none lingers as a process or a zombie."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    for pid in members:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the parent dies, even by SIGKILL, so a
    crashed service never leaves a Triton holding the ports and the models (Linux)."""
    import ctypes

    with contextlib.suppress(Exception):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
