"""Keeps the embedded Triton alive: a crashed ``tritonserver`` is reaped with its python
backend stubs and started again with backoff, and health says what happened.

The watch runs in one daemon thread that also performs every restart, because the
child's death signal (PR_SET_PDEATHSIG) is tied to the thread that started it: a restart
from a short-lived thread would be killed when that thread ends.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.inference.server import EmbeddedTriton, group_members, kill_group

log = logging.getLogger(__name__)

BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
"""Waits before successive restart attempts; the last one repeats."""
STABLE_S = 120.0
"""A server that has run this long resets the backoff."""


@dataclass
class SupervisorState:
    """What health reports about the embedded server."""

    running: bool = True
    restarts: int = 0
    last_exit: int | None = None
    last_exit_at: float | None = None
    last_error: str | None = None
    """Why the last restart attempt failed, when it did."""

    def describe(self) -> str:
        if self.running:
            return f"embedded, restarted {self.restarts} times" if self.restarts else "embedded"
        since = time.time() - (self.last_exit_at or time.time())
        text = f"tritonserver exited with {self.last_exit} {since:.0f}s ago; restarting"
        return f"{text} (last attempt: {self.last_error})" if self.last_error else text


class TritonSupervisor:
    """Owns the embedded server after its first start and restarts it when it dies."""

    def __init__(self, launch: Callable[[], EmbeddedTriton], *,
                 poll_s: float = 0.5, backoff_s: tuple[float, ...] = BACKOFF_S) -> None:
        self._launch = launch
        self._poll_s = poll_s
        self._backoff_s = backoff_s
        self._stop = threading.Event()
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="triton-supervisor",
                                        daemon=True)
        self.server: EmbeddedTriton | None = None
        self.state = SupervisorState()

    def start(self) -> EmbeddedTriton:
        """Start the server from the watch thread; raise what the first start raised."""
        _become_subreaper()
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            raise self._start_error
        assert self.server is not None
        return self.server

    def stop(self) -> None:
        """Stop the watch, and the server from the watch thread: the server gets the
        thread's death signal when the thread ends, so it is stopped before that."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)
        if self.server is not None:
            self.server.stop()  # no-op when the thread stopped it

    def _run(self) -> None:
        try:
            self.server = self._launch()
        except BaseException as exc:  # reported by start(), in the caller's thread
            self._start_error = exc
            return
        finally:
            self._started.set()
        try:
            self._watch()
        finally:
            if self.server is not None:
                self.server.stop()

    def _watch(self) -> None:
        assert self.server is not None
        attempt = 0
        started_at = time.monotonic()
        while not self._stop.wait(self._poll_s):
            process = self.server.process if self.server else None
            if process is None or process.poll() is None:
                if attempt and time.monotonic() - started_at > STABLE_S:
                    attempt = 0
                continue
            self._reap(process.pid, process.returncode)
            while not self._stop.is_set():
                delay = self._backoff_s[min(attempt, len(self._backoff_s) - 1)]
                attempt += 1
                if self._stop.wait(delay):
                    return
                if self._restart(attempt):
                    started_at = time.monotonic()
                    break

    def _reap(self, pid: int, returncode: int) -> None:
        """The server is gone: kill what is left of its process group (the python backend
        stubs outlive it, re-parented, holding the models' memory)."""
        kill_group(pid, group_members(pid))
        self.state.running = False
        self.state.last_exit = returncode
        self.state.last_exit_at = time.time()
        log.error("tritonserver exited with %s; restarting it. Last log lines:\n%s",
                  returncode, self.server.tail_log(10) if self.server else "")

    def _restart(self, attempt: int) -> bool:
        log.warning("restarting tritonserver (attempt %d)", attempt)
        try:
            self.server = self._launch()
        except Exception as exc:
            self.state.last_error = str(exc).splitlines()[0] if str(exc) else repr(exc)
            log.error("tritonserver restart failed: %s", self.state.last_error)
            return False
        self.state.running = True
        self.state.last_error = None
        self.state.restarts += 1
        log.warning("tritonserver is back after %.1fs (restart %d)",
                    time.time() - (self.state.last_exit_at or time.time()), self.state.restarts)
        return True


def _become_subreaper() -> None:
    """Orphans of our children (the stubs of a dead tritonserver) become our children, so
    they can be reaped here instead of lingering as zombies of PID 1 (Linux)."""
    import ctypes

    pr_set_child_subreaper = 36
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1)

