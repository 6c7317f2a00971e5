"""What a call transport hands its session (WebRTC, Twilio): client events, caller audio
and the end of the call, in arrival order, with the audio bounded."""

from __future__ import annotations

import asyncio

MAX_QUEUED_AUDIO = 250
"""Caller audio frames (20 ms each: 5 s) waiting for the session; more are dropped rather
than letting a stalled session grow memory."""
AUDIO_DELTAS = {"response.audio.delta", "response.output_audio.delta"}
"""Reply audio events (beta and GA names), which a call plays on its line instead."""


class InboundFrames:
    """A :class:`~.base.Transport`'s ``receive`` side for transports fed by callbacks."""

    def __init__(self, max_audio: int = MAX_QUEUED_AUDIO) -> None:
        self._queue: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self._max_audio = max_audio
        self._audio = 0
        self.dropped = 0
        """Audio frames dropped because the session fell behind."""

    def event(self, text: str) -> None:
        self._queue.put_nowait(text)

    def audio(self, pcm: bytes) -> bool:
        """Queue caller audio; False (and counted in ``dropped``) when over the bound."""
        if self._audio >= self._max_audio:
            self.dropped += 1
            return False
        self._audio += 1
        self._queue.put_nowait(pcm)
        return True

    def end(self) -> None:
        """The caller is gone: ``receive`` returns None once what came before is taken."""
        self._queue.put_nowait(None)

    async def receive(self) -> str | bytes | None:
        item = await self._queue.get()
        if isinstance(item, bytes):
            self._audio -= 1
        return item
