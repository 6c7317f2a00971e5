"""The realtime sockets open in this process: one per session.

A second socket on a session replaces the first (a client reconnecting after a network
drop is usually the one asking, and the server may not have noticed the drop yet): the
old socket gets an ``error`` event and closes with 4409 once its last turn is stored, and
only then does the new one start, so the two never interleave a history. Ending a session
closes its socket with 4410. Storage refuses turns of an ended session as well
(``SessionEnded``), which covers sockets held by other replicas.

With ``REDIS_URL`` the same holds across replicas: a socket holds its session's lease in
Redis, and replacing or ending it elsewhere asks its replica (a published message) to
close it the same way (:mod:`orchestrator.shared.sessions`). While Redis does not answer,
each replica decides alone, as without it.

Shutting down (SIGTERM, ``orchestrator.serving``) drains them: each socket finishes the
turn in flight, gets an ``error`` event ``server_shutting_down`` and closes with 1001
(going away); the client reconnects to another replica and continues the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchestrator.close_codes import SessionGone, close_code
from orchestrator.errors import AppError, Conflict, ShuttingDown
from orchestrator.shared.connection import Unavailable
from orchestrator.shared.sessions import ANY_HOLDER

if TYPE_CHECKING:
    from orchestrator.shared.sessions import SessionLeases

HANDOVER_TIMEOUT_S = 15.0
"""How long a new socket waits for the one it replaces to finish its last turn."""
HANDOVER_POLL_S = 0.05
"""How often a new socket asks Redis whether another replica's socket let go."""


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
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Its lease's value in Redis: which socket of the session holds it."""


async def _wait_done(live: LiveSocket, timeout_s: float) -> None:
    """Wait up to ``timeout_s`` for the socket to be released. ``asyncio.timeout`` rather
    than ``wait_for``, which on Python 3.11 can swallow a cancel that lands as it ends."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await live.done.wait()


def _replaced(session_id: str) -> Conflict:
    return Conflict(f"session {session_id!r} was opened by another connection, which "
                    "replaces this one")


class LiveSessions:
    def __init__(self, leases: SessionLeases | None = None) -> None:
        self._open: dict[str, LiveSocket] = {}
        self.leases = leases
        if leases is not None:
            leases.on_close_request = self._close_requested
            leases.on_lost = self._lost

    async def claim(self, session_id: str) -> LiveSocket:
        """Register the current task as the session's socket, closing an older one first
        (in this process, or through Redis on another replica)."""
        task = asyncio.current_task()
        assert task is not None
        live = LiveSocket(session_id, task)
        older = self._open.get(session_id)
        if older is not None:
            self._close(older, _replaced(session_id))
            await _wait_done(older, HANDOVER_TIMEOUT_S)
        if self.leases is not None:
            await self._claim_lease(live, replacing_own=older is not None)
        self._open[session_id] = live
        return live

    def release(self, live: LiveSocket) -> None:
        live.done.set()
        if self._open.get(live.session_id) is live:
            del self._open[live.session_id]
        if self.leases is not None:
            self.leases.release(live.session_id, live.token)

    async def end(self, session_id: str, timeout_s: float = 5.0) -> None:
        """The session has ended: close its socket and wait a little for it to go."""
        if self.leases is not None:  # its socket may be on another replica
            await self.leases.ask_close(session_id, ANY_HOLDER, "ended")
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

    async def _claim_lease(self, live: LiveSocket, *, replacing_own: bool) -> None:
        assert self.leases is not None
        session_id = live.session_id
        try:
            if replacing_own:  # the lease was our older socket's, which is gone now
                await self.leases.take(session_id, live.token)
                return
            holder = await self.leases.claim(session_id, live.token)
            if holder is None:
                return
            await self.leases.ask_close(session_id, holder, "replaced")
            deadline = time.monotonic() + HANDOVER_TIMEOUT_S
            while time.monotonic() < deadline:
                await asyncio.sleep(HANDOVER_POLL_S)
                if await self.leases.claim(session_id, live.token) is None:
                    return
            await self.leases.take(session_id, live.token)  # it never let go: crashed
        except Unavailable:  # one replica decides alone until Redis answers
            self.leases.hold(session_id, live.token)
        except BaseException:  # the client left meanwhile: no lease may outlive it
            self.leases.release(session_id, live.token)
            raise

    def _close_requested(self, session_id: str, holder: str, reason: str) -> None:
        """Another replica asks: close this session's socket (replaced, or ended)."""
        live = self._open.get(session_id)
        if live is None or holder not in (live.token, ANY_HOLDER):
            return
        if reason == "ended":
            self._close(live, SessionGone(f"session {session_id!r} has ended"))
        else:
            self._close(live, _replaced(session_id))

    def _lost(self, session_id: str, token: str) -> None:
        """Another socket took this one's lease (it waited out the handover)."""
        live = self._open.get(session_id)
        if live is not None and live.token == token:
            self._close(live, _replaced(session_id))

    @staticmethod
    def _close(live: LiveSocket, exc: AppError) -> None:
        if live.reason is None:
            live.reason = (exc, close_code(exc))
            live.task.cancel()
