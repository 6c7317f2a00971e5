"""An event loop on a thread of its own for this process's peer connections.

A call's reply leaves 20 ms at a time on a clock (:class:`~.media.ReplyTrack`). On the
event loop that serves the sessions, every frame waits behind whatever step of a reply
pipeline holds the loop (a prefill's gRPC call, a TTS chunk's bookkeeping, another call's
setup): measured in Chromium, frames left up to 400 ms late at a turn's busiest moment, and
the browser's jitter buffer grew to hold the next reply that much longer. Here ICE, DTLS,
SRTP, the caller's audio and the reply's pacing run on a loop that nothing else uses; the
sessions' loop and this one share the interpreter, which hands it over every 5 ms
(``sys.getswitchinterval``), and the models' threads, which release it.

A call crosses between the two loops only through :meth:`MediaLoop.run` (a coroutine, its
result awaited) and :meth:`MediaLoop.call_soon` (a callback, in order with the rest).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
STOP_TIMEOUT_S = 5.0


class MediaLoopClosed(RuntimeError):
    """The media loop has stopped (the process is shutting down)."""


class MediaLoop:
    """A daemon thread running an asyncio loop, and the two ways onto it."""

    def __init__(self, name: str = "webrtc-media") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self.loop.is_closed()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` run on the media loop; cancelling the wait cancels it there."""
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError:  # the loop is closed
            coro.close()
            raise MediaLoopClosed("the WebRTC media loop has stopped") from None
        return await asyncio.wrap_future(future)

    def call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        """Run ``callback(*args)`` on the media loop, after what was handed over before."""
        with contextlib.suppress(RuntimeError):  # closed: the calls are gone too
            self.loop.call_soon_threadsafe(callback, *args)

    async def close(self) -> None:
        """Stop the loop once what is scheduled has run, and wait for its thread."""
        if not self.running:
            return
        self.call_soon(self.loop.stop)
        await asyncio.to_thread(self._thread.join, STOP_TIMEOUT_S)
        if self._thread.is_alive():
            log.warning("the WebRTC media loop did not stop within %.0f s", STOP_TIMEOUT_S)


def hand_to(loop: asyncio.AbstractEventLoop) -> Callable[..., None]:
    """``callback(*args)`` run on ``loop`` (the sessions' loop), from any thread; dropped
    once that loop is closed (the process is ending)."""

    def call(callback: Callable[..., object], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback, *args)
    return call
