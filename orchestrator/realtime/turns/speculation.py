"""Speculative turns: work started at a pause, shown to nobody until the turn ends.

At the first pause in the user's speech the final transcription and the reply start
as an ordinary turn whose events go to a :class:`HeldSink` and whose stored rows wait
for :attr:`HeldSink.confirmed`. When the turn then ends, :meth:`HeldSink.release`
sends what was held, in order, and the turn carries on as if it had started then; when
the user goes on speaking instead, the turn's task is cancelled and nothing it did
reached the socket, the database or memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from orchestrator.realtime.ports import ReplySink
from orchestrator.realtime.protocol.outbound import ConnectionClosed
from orchestrator.telemetry.metrics import SPECULATIVE_TURNS


class HeldSink:
    """A :class:`~.ports.ReplySink` that keeps events until :meth:`release`, then
    forwards them (and everything after) to ``target`` in the order they came."""

    def __init__(self, target: ReplySink,
                 spawn: Callable[[Coroutine[Any, Any, None], str], asyncio.Task]) -> None:
        self.target = target
        self.spawn = spawn
        self.confirmed = asyncio.Event()
        self.turn_detection_ms: float | None = None
        """Set when the turn ended: how long after the pause's last voiced audio."""
        self.released_at: float | None = None  # time.perf_counter() at release
        self.transcript: tuple[str, str | None] | None = None
        """The speculative turn's transcript (text, language) once it is known: turn
        taking reads it as a second opinion."""
        self._held: deque[tuple[Any, str | None, Callable[[], None] | None]] = deque()
        self._forwarding: asyncio.Task | None = None

    @property
    def holding(self) -> bool:
        return not self.confirmed.is_set()

    async def put(self, event: Any, *, response_id: str | None = None,
                  on_sent: Callable[[], None] | None = None) -> None:
        # While earlier events are still being forwarded, later ones queue behind them.
        if self.holding or self._held:
            self._held.append((event, response_id, on_sent))
            return
        await self.target.put(event, response_id=response_id, on_sent=on_sent)

    async def drop_response(self, response_id: str) -> int:
        kept = deque(item for item in self._held if item[1] != response_id)
        dropped = len(self._held) - len(kept)
        self._held = kept
        return dropped + await self.target.drop_response(response_id)

    async def settled(self, response_id: str) -> None:
        if self.holding:
            return  # nothing of it has left: there is nothing to wait for
        if self._forwarding is not None:  # held events are still being forwarded
            await asyncio.wait({self._forwarding})
        await self.target.settled(response_id)

    def release(self) -> None:
        """The turn ended: send what was held (off the caller: the socket may be slow)."""
        if self.confirmed.is_set():
            return
        self.confirmed.set()
        self.released_at = time.perf_counter()
        if self._held:
            self._forwarding = self.spawn(self._forward(), "release")

    async def _forward(self) -> None:
        with contextlib.suppress(ConnectionClosed):  # the client left: nothing to send
            while self._held:
                event, response_id, on_sent = self._held[0]
                await self.target.put(event, response_id=response_id, on_sent=on_sent)
                if self._held and self._held[0][0] is event:
                    self._held.popleft()
        self._held.clear()


class Speculation:
    """One speculative turn: its sink and the task running it. Each ends confirmed or
    cancelled, and is counted so (``voicechat_speculative_turns_total``)."""

    def __init__(self, sink: HeldSink, task: asyncio.Task) -> None:
        self.sink, self.task = sink, task

    def confirm(self, turn_detection_ms: float) -> None:
        self.sink.turn_detection_ms = turn_detection_ms
        self.sink.release()
        SPECULATIVE_TURNS.labels("confirmed").inc()

    def cancel(self) -> None:
        self.task.cancel()
        SPECULATIVE_TURNS.labels("cancelled").inc()
