"""A real Milvus server (standalone: embedded etcd, local storage, RocksMQ) for tests, from
the ``milvus`` wheel in the dev extra: the same gRPC server that compose and Kubernetes
run as milvus-standalone, so several processes can share one memory collection.

The wheel's own ``MilvusServer`` is not used to run it: its ``start`` changes the test
process's working directory (other threads are running), its ``stop`` kills after one
second, and it refuses a port that a just-stopped server left in TIME_WAIT. Only its
config template (``MilvusServerConfig``) and its unpacking of the binaries are reused.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mariadb import free_port

PORT_KEYS = ("etcd_port", "root_coord_port", "proxy_port", "proxy_internal_port",
             "query_coord_port", "query_node_port", "index_coord_port", "index_node_port",
             "data_coord_port", "data_node_port")
"""Every ``*_port`` of the wheel's config template: each gets a free port, kept across
restarts (the components register their addresses in etcd)."""


def available() -> bool:
    try:
        import milvus  # noqa: F401
    except ImportError:
        return False
    return True


class MilvusServer:
    """One standalone Milvus in ``base`` (its data survives :meth:`stop`/:meth:`start`)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.ports = {key: free_port() for key in PORT_KEYS}
        self.health_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.started_s = 0.0  # how long the last start took

    @property
    def port(self) -> int:
        return self.ports["proxy_port"]

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 120) -> None:
        started = time.monotonic()
        config = _reusable_config(data_dir=str(self.base), **self.ports)
        config.resolve()  # writes configs/milvus.yaml
        binary = _unpacked(self.base) / "milvus"
        env = {**os.environ, "DEPLOY_MODE": "STANDALONE",
               "METRICS_PORT": str(self.health_port),
               "MILVUS_RUN_DIR": str(self.base / "run"),
               "LD_LIBRARY_PATH": f"{binary.parent}:{os.environ.get('LD_LIBRARY_PATH', '')}"}
        log = open(self.base / "logs" / "milvus-stdout.log", "ab")  # noqa: SIM115 - the child's
        self.process = subprocess.Popen([str(binary), "run", "standalone"], cwd=self.base,
                                        env=env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        self._wait_healthy(timeout_s)
        self.started_s = time.monotonic() - started

    def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"Milvus exited at start; see {self.base / 'logs'}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if b"OK" in response.read():
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"Milvus not healthy in {timeout_s} s; see {self.base / 'logs'}")

    def stop(self, grace_s: float = 5) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``: a graceful stop of standalone Milvus
        takes over 30 s here; what was written is in its write-ahead log either way."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """The server stopped (SIGSTOP) but its sockets open: calls get no answer at all.
        Restarted afterwards: once thawed it keeps failing searches for a while (its
        components lost their etcd sessions)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.process.send_signal(signal.SIGCONT)
            self.stop()
            self.start()

    def rss_mib(self) -> float:
        if self.process is None:
            return 0.0
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024


def _unpacked(base: Path) -> Path:
    """The server's binaries (about 390 MB unpacked from the wheel's 58 MB) in a cache
    shared by test sessions, linked as ``base/bin``: unpacked once, not per session. A
    lock, since two sessions on one machine may start at once."""
    import milvus

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / \
        "voicechat" / f"milvus-{milvus.__version__}"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        milvus._initialize_data_files(str(cache))  # checks each file's checksum first
    if not (base / "bin").exists():
        (base / "bin").symlink_to(cache / "bin")
    return base / "bin"


def _reusable_config(**kwargs):  # type: ignore[no-untyped-def]
    from milvus import MilvusServerConfig

    class ReusableConfig(MilvusServerConfig):
        def try_bind_port(self, port: int):  # type: ignore[no-untyped-def]
            """The wheel's check that a port is free, with SO_REUSEADDR as Milvus itself
            binds: a restart on the same ports must not fail on TIME_WAIT sockets."""
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
                sock.listen()
            except OSError:
                sock.close()
                return None
            return sock

    return ReusableConfig(**kwargs)


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusServer]:
    """One Milvus server for the test session; tests that stop it start it again. Skipped
    only where the wheel is missing (it is in the dev extra, so not in CI)."""
    if not available():
        pytest.skip("the milvus wheel (dev extra) is not installed")
    server = MilvusServer(tmp_path_factory.mktemp("milvus"))
    server.start()
    print(f"\nMilvus server {server.uri}: started in {server.started_s:.1f} s, "
          f"RSS {server.rss_mib():.0f} MiB")
    yield server
    server.stop()
