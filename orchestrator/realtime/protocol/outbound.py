"""The bounded send queue of one connection, and its writer.

A slow reader fills the socket, then this queue; producers then wait in :meth:`put`,
which stalls the reply pipeline (LLM and TTS pull no further) instead of growing memory.
A reply's own deltas (put with a ``response_id``) fill the queue routinely: a WebRTC or
Twilio call takes audio at playout pace while the voice runs ahead. Other events (speech
started, transcripts, errors: what the caller's audio makes) have as much room again, so
the session reading the caller's audio never waits behind a reply's queued audio; that
wait would hold back the very speech that interrupts the reply (measured: a barge-in
heard 16 s late behind a long reply, 2026-12-07).
Queued deltas of a cancelled reply are dropped (:meth:`drop_response`) so a barge-in is
heard at once, and each delta's ``on_sent`` runs only once the socket took it: "sent"
means written, which is what a truncated assistant turn keeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.realtime.protocol.server_events import encoder

log = logging.getLogger(__name__)


class ConnectionClosed(Exception):
    """The socket is gone; nothing more can be sent."""


async def emit(out: Any, event: Any, on_sent: Callable[[], None] | None = None) -> None:
    """Put ``event`` on ``out`` (the queue, or a speculative turn's held sink). A client
    that left gets nothing more; its turn is still finished and stored. ``on_sent``: run
    once the event has left (after every event queued before it)."""
    with contextlib.suppress(ConnectionClosed):
        if on_sent is None:
            await out.put(event)
        else:
            await out.put(event, on_sent=on_sent)


@dataclass(slots=True)
class Outgoing:
    payload: bytes
    response_id: str | None = None
    on_sent: Callable[[], None] | None = None


class OutboundQueue:
    def __init__(self, maxsize: int,
                 translate: Callable[[Any], list[Any]] | None = None) -> None:
        self.maxsize = maxsize
        """Queued events at which a reply's delta waits; other events wait at twice this."""
        self.translate = translate
        """Engine event -> the events to send (``/v1/realtime`` speaks OpenAI's protocol);
        the last of them is the one ``response_id`` and ``on_sent`` belong to."""
        self._items: deque[Outgoing] = deque()
        self._changed = asyncio.Condition()
        self._sending: str | None = None  # the response of the item being written now
        self.closed = False

    def __len__(self) -> int:
        return len(self._items)

    async def put(self, event: Any, *, response_id: str | None = None,
                  on_sent: Callable[[], None] | None = None) -> None:
        """Queue an event (Struct or dict); wait while the queue is full: at
        :attr:`maxsize` for a reply's delta (``response_id`` given), at twice that for
        any other event."""
        events = self.translate(event) if self.translate is not None else [event]
        if not events:
            if on_sent is not None:
                on_sent()  # nothing to send for it: as good as sent
            return
        *before, last = [encoder.encode(e) for e in events]
        limit = self.maxsize if response_id is not None else 2 * self.maxsize
        async with self._changed:
            await self._changed.wait_for(lambda: self.closed or len(self._items) < limit)
            if self.closed:
                raise ConnectionClosed
            # lifecycle events the translation put first are never dropped with the reply
            self._items.extend(Outgoing(payload) for payload in before)
            self._items.append(Outgoing(last, response_id, on_sent))
            self._changed.notify_all()

    async def get(self) -> Outgoing:
        async with self._changed:
            await self._changed.wait_for(lambda: self.closed or bool(self._items))
            if not self._items:
                raise ConnectionClosed
            item = self._items.popleft()
            self._sending = item.response_id
            self._changed.notify_all()
            return item

    async def taken(self) -> None:
        """The item :meth:`get` gave has been written (or failed)."""
        async with self._changed:
            self._sending = None
            self._changed.notify_all()

    async def settled(self, response_id: str) -> None:
        """Wait until every queued event of ``response_id`` has been written or dropped, so
        what a reply stores is what the client got, however slowly the transport takes it
        (a WebRTC call takes audio at playout pace)."""
        def done() -> bool:
            return self.closed or (self._sending != response_id and not any(
                item.response_id == response_id for item in self._items))

        async with self._changed:
            await self._changed.wait_for(done)

    async def drop_response(self, response_id: str) -> int:
        """Forget queued deltas of one reply; returns how many were dropped."""
        async with self._changed:
            kept = deque(item for item in self._items if item.response_id != response_id)
            dropped = len(self._items) - len(kept)
            self._items = kept
            self._changed.notify_all()
            return dropped

    async def close(self) -> None:
        async with self._changed:
            self.closed = True
            self._items.clear()
            self._changed.notify_all()


async def write_loop(queue: OutboundQueue, send: Callable[[bytes], Awaitable[None]]) -> None:
    """Drain the queue into the socket until it closes; a send failure closes the queue."""
    try:
        while True:
            item = await queue.get()
            try:
                await send(item.payload)
                if item.on_sent is not None:
                    item.on_sent()
            finally:
                await queue.taken()
    except ConnectionClosed:
        pass
    except Exception as exc:  # socket gone: stop producers instead of letting them wait
        log.info("realtime send failed: %s", exc)
    finally:
        await queue.close()
