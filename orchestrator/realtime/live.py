"""The realtime sockets open in this process: one per session.

A second socket on a session replaces the first (a client reconnecting after a network
drop is usually the one asking, and the server may not have noticed the drop yet): the
old socket gets an ``error`` event and closes with 4409 once its last turn is stored, and
only then does the new one start, so the two never interleave a history. Ending a session
closes its socket with 4410. Storage refuses turns of an ended session as well
(``SessionEnded``), which covers sockets held by other replicas.

Shutting down (SIGTERM, ``orchestrator.serving``) drains them: each socket finishes the
turn in flight, gets an ``error`` event ``server_shutting_down`` and closes with 1001
(going away); the client reconnects to another replica and continues the session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from orchestrator.close_codes import SessionGone, close_code
from orchestrator.errors import AppError, Conflict, ShuttingDown

HANDOVER_TIMEOUT_S = 15.0
"""How long a new socket waits for the one it replaces to finish its last turn."""


@dataclass(eq=False)
class LiveSocket:
    session_id: str
    task: asyncio.Task
    """The task serving the socket; cancelled to close it."""
    reason: tuple[AppError, int] | None = None
    """Why the server closes it (the error event and the close code), once it does."""
    done: asyncio.Event = field(default_factory=asyncio.Event)
    settle: Callable[[float], Awaitable[None]] | None = None
    """Finish the turn in flight and take no new one (within the seconds given)."""


async def _wait_done(live: LiveSocket, timeout_s: float) -> None:
    """Wait up to ``timeout_s`` for the socket to be released. ``asyncio.timeout`` rather
    than ``wait_for``, which on Python 3.11 can swallow a cancel that lands as it ends."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await live.done.wait()


class LiveSessions:
    def __init__(self) -> None:
        self._open: dict[str, LiveSocket] = {}

    async def claim(self, session_id: str) -> LiveSocket:
        """Register the current task as the session's socket, closing an older one first."""
        older = self._open.get(session_id)
        if older is not None:
            self._close(older, Conflict(f"session {session_id!r} was opened by another "
                                        "connection, which replaces this one"))
            await _wait_done(older, HANDOVER_TIMEOUT_S)
        task = asyncio.current_task()
        assert task is not None
        live = LiveSocket(session_id, task)
        self._open[session_id] = live
        return live

    def release(self, live: LiveSocket) -> None:
        live.done.set()
        if self._open.get(live.session_id) is live:
            del self._open[live.session_id]

    async def end(self, session_id: str, timeout_s: float = 5.0) -> None:
        """The session has ended: close its socket and wait a little for it to go."""
        live = self._open.get(session_id)
        if live is None:
            return
        self._close(live, SessionGone(f"session {session_id!r} has ended"))
        await _wait_done(live, timeout_s)

    async def drain(self, timeout_s: float) -> None:
        """Close every socket once its turn in flight is done (at most ``timeout_s``)."""

        async def close(live: LiveSocket) -> None:
            if live.settle is not None:
                with contextlib.suppress(Exception):  # closing it is what matters now
                    await live.settle(timeout_s)
            self._close(live, ShuttingDown("the server is shutting down; reconnect to "
                                           "continue this session"))
            await _wait_done(live, HANDOVER_TIMEOUT_S)

        await asyncio.gather(*(close(live) for live in list(self._open.values())))

    def count(self) -> int:
        return len(self._open)

    @staticmethod
    def _close(live: LiveSocket, exc: AppError) -> None:
        if live.reason is None:
            live.reason = (exc, close_code(exc))
            live.task.cancel()
