"""The HTTP server: uvicorn, with a drain before it stops.

On the first SIGTERM (or SIGINT) this replica turns unready at once (``/readyz`` 503),
refuses new realtime sockets, lets each open one finish its turn in flight and closes it
with an ``error`` event and 1001, all within ``DRAIN_TIMEOUT_S``. Only then does uvicorn's
own shutdown begin: it stops listening, waits (the same timeout) for HTTP requests in
flight, and runs the app's shutdown. A second signal skips what is left of the drain.
Without this, uvicorn closes every WebSocket at once with 1012 and no event.
"""

from __future__ import annotations

import asyncio
import logging
from types import FrameType
from typing import Any

import uvicorn

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: Any, drain_timeout_s: float) -> None:
        super().__init__(config)
        self.app = app
        self.drain_timeout_s = drain_timeout_s
        self.drained: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drained is None and self.started and not self.should_exit \
                and self._loop is not None:
            # A signal handler runs between two bytecodes of the loop's own thread: hand
            # the drain to the loop rather than touch it from here.
            self._loop.call_soon_threadsafe(self._start_drain)
            return
        super().handle_exit(sig, frame)

    def _start_drain(self) -> None:
        if self.drained is None:
            assert self._loop is not None
            self.drained = self._loop.create_task(self.drain(), name="drain")

    async def drain(self) -> None:
        runtime = getattr(self.app.state, "runtime", None)
        try:
            if runtime is not None:
                runtime.draining = True
                log.info("draining: %d realtime sockets finish their turns (at most %g s)",
                         runtime.live_sessions.count(), self.drain_timeout_s)
                await runtime.live_sessions.drain(self.drain_timeout_s)
        finally:
            self.should_exit = True  # uvicorn's shutdown from here


def quiet_known_startup_failure(app: Any) -> Any:
    """The app, with a start-up failure it explained (``app.state.startup_error``, one
    line the CLI prints) reported to uvicorn without Litestar's traceback."""
    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            return await app(scope, receive, send)

        async def send_quietly(message: Any) -> None:
            if message["type"] == "lifespan.startup.failed" \
                    and app.state.get("startup_error"):
                message = {**message, "message": ""}
            await send(message)

        return await app(scope, receive, send_quietly)

    return asgi


def server(app: Any, *, drain_timeout_s: float, **config: Any) -> DrainingServer:
    """``config``: what ``uvicorn.Config`` takes besides the app."""
    return DrainingServer(uvicorn.Config(quiet_known_startup_failure(app), log_config=None,
                                         lifespan="on",
                                         timeout_graceful_shutdown=int(drain_timeout_s) or 1,
                                         **config), app, drain_timeout_s)
