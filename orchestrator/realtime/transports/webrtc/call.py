"""One WebRTC call as a :class:`~..base.Transport`: events on the ``oai-events`` data
channel, the caller's voice from the remote track, the reply on :class:`~.media.ReplyTrack`.

As OpenAI does on WebRTC, reply audio never travels as ``response.output_audio.delta``
events: those are taken off the event stream and played on the track, and the client
hears about playout through ``output_audio_buffer.started`` / ``.stopped`` / ``.cleared``.
A delta counts as sent (what a cut-off reply keeps) once it is queued at most
``PLAYOUT_LEAD_S`` ahead of the playout clock. A cancelled reply (barge-in,
``response.cancel``, ``output_audio_buffer.clear``) flushes what is queued at once.

The call ends when the caller hangs up (``POST /v1/realtime/calls/{id}/hangup``), closes
the peer connection, ICE or DTLS fails, or no media arrives for ``WEBRTC_MEDIA_TIMEOUT_S``.

A call lives on two loops. Its peer connection, data channel and tracks run on the
process's :class:`~.media_loop.MediaLoop`, so the reply's pacing never waits behind a
session's work; its :class:`~..base.Transport` side (``receive``, ``send``, ``close``,
``end``) is called on the sessions' loop. Methods say which loop they run on; they cross
only through ``self.media`` (onto the media loop) and ``self._home`` (back).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import msgspec
from aiortc import MediaStreamTrack, RTCDataChannel, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from orchestrator.errors import AppError, websocket_error_event
from orchestrator.realtime.protocol.server_events import encoder
from orchestrator.realtime.protocol.session_types import SessionConfig, new_id
from orchestrator.realtime.transports.inbound import AUDIO_DELTAS, InboundFrames
from orchestrator.realtime.transports.webrtc.jitter import PacketOrder
from orchestrator.realtime.transports.webrtc.media import InboundAudio, ReplyTrack
from orchestrator.realtime.transports.webrtc.media_loop import MediaLoop, MediaLoopClosed, hand_to

log = logging.getLogger(__name__)
EVENTS_CHANNEL = "oai-events"
PLAYOUT_LEAD_S = 0.3
"""How far reply audio is queued ahead of playout: enough to ride out a slow TTS chunk,
little enough that "sent" is what the caller heard, give or take this much."""
MAX_EARLY_EVENTS = 1000
"""Events held until the caller's data channel opens (session.created comes first)."""


class NoMedia(AppError):
    """The caller's audio stopped arriving (a vanished peer keeps no connection state)."""

    status, code = 408, "call_media_timeout"


class WebRTCCall:
    """A negotiated peer connection, serving one realtime session."""

    def __init__(self, call_id: str, pc: RTCPeerConnection, *, user_id: str,
                 session_id: str, media_timeout_s: float, media: MediaLoop,
                 home: asyncio.AbstractEventLoop) -> None:
        """Made on the media loop, with the peer connection; ``home`` is the sessions'."""
        self.id, self.pc, self.user_id, self.session_id = call_id, pc, user_id, session_id
        self.media_timeout_s = media_timeout_s
        self.media = media
        self._home = hand_to(home)
        self.config: Callable[[], SessionConfig] | None = None
        """The session's config, once the session exists (formats and rates of audio)."""
        self.inbound = InboundFrames()
        self.reply = ReplyTrack(on_drained=self._drained)
        self._audio_in = InboundAudio(self._input_format)
        self._channel: RTCDataChannel | None = None
        self._early: list[str] = []
        self._playing: str | None = None  # the response whose audio is on the track
        self._finished: set[str] = set()  # responses whose last delta has been queued
        self._pump: asyncio.Task | None = None
        self._ended = False
        self.order: PacketOrder | None = None
        """What puts the caller's packets in order (None: aiortc's own jitter buffer)."""
        pc.on("datachannel", self._on_channel)
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", self._on_state)

    # --- Transport (the sessions' loop) -----------------------------------------------------

    async def receive(self) -> str | bytes | None:
        return await self.inbound.receive()

    async def send(self, payload: bytes) -> None:
        event = msgspec.json.decode(payload)
        kind = event.get("type")
        with contextlib.suppress(MediaLoopClosed):
            if kind in AUDIO_DELTAS:
                await self.media.run(self._play(event))
            else:
                self.media.call_soon(self._on_event, kind, event, payload.decode())

    async def refuse(self, exc: AppError, code: int | None = None) -> None:
        await self.close((exc, code or 0))

    async def close(self, reason: tuple[AppError, int] | None = None) -> None:
        if reason is not None:
            self.media.call_soon(
                self._deliver, encoder.encode(websocket_error_event(reason[0])).decode())
        await self.end()

    async def end(self) -> None:
        """Hang up: the session sees the caller gone, and the peer connection closes."""
        if self._ended:
            return
        self._ended = True
        if self.order is not None and (self.order.concealed or self.order.late):
            log.info("webrtc call %s: %d caller packets lost and concealed, %d came too late",
                     self.id, self.order.concealed, self.order.late)
        if late := sorted(self.reply.late_ms):
            log.info("webrtc call %s: reply frames left their slot late by p50 %.1f, p95 %.1f,"
                     " max %.1f ms (%d frames); the clock skipped %.2f s after stalls",
                     self.id, late[len(late) // 2], late[int(len(late) * 0.95)], late[-1],
                     len(late), self.reply.rebased_s)
        self.inbound.end()
        with contextlib.suppress(Exception):  # a stopped media loop took the call with it
            await self.media.run(self._hang_up())

    def _hear(self, pcm: bytes) -> None:
        """Caller audio, converted on the media loop, handed to the session."""
        if not self.inbound.audio(pcm) and self.inbound.dropped == 1:
            log.warning("webrtc call %s: the session falls behind; caller audio "
                        "is being dropped", self.id)

    # --- the peer connection (the media loop) -----------------------------------------------

    def _on_event(self, kind: str | None, event: dict[str, Any], text: str) -> None:
        """A server event other than reply audio: playout bookkeeping, then the channel."""
        if kind == "response.done":
            response = event.get("response") or {}
            response_id = response.get("id")
            if response.get("status") == "cancelled" and response_id == self._playing:
                self._clear(response_id)
            elif response_id == self._playing:
                self._finished.add(response_id)
                if self.reply.queued_s == 0:
                    self._drained()
        elif kind == "output_audio_buffer.cleared":
            self.reply.flush()
            self._playing = None
        self._deliver(text)

    async def _hang_up(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        self.reply.stop()
        with contextlib.suppress(Exception):
            await asyncio.sleep(0.05)  # let a last error event leave the channel
            await self.pc.close()

    def _end_soon(self, why: str, error: AppError | None = None) -> None:
        if self._ended:
            return
        log.info("webrtc call %s ends: %s", self.id, why)
        if error is not None:
            self._deliver(encoder.encode(websocket_error_event(error)).decode())
        # Nothing plays any more: a reply waiting for the playout clock must not hold the
        # session (and the key's slot) open.
        self.reply.stop()
        self._home(self.inbound.end)

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self._end_soon(f"peer connection {self.pc.connectionState}")

    def _on_channel(self, channel: RTCDataChannel) -> None:
        if channel.label != EVENTS_CHANNEL or self._channel is not None:
            return  # other channels are the app's own business
        self._channel = channel

        @channel.on("message")
        def on_message(message: str | bytes) -> None:
            text = message if isinstance(message, str) else message.decode("utf-8", "replace")
            self._home(self.inbound.event, text)

        @channel.on("open")
        def on_open() -> None:
            self._flush_early()

        if channel.readyState == "open":
            self._flush_early()

    def _deliver(self, text: str) -> None:
        channel = self._channel
        if channel is None or channel.readyState != "open":
            if len(self._early) < MAX_EARLY_EVENTS:
                self._early.append(text)
            return
        with contextlib.suppress(Exception):  # closing: the caller is gone
            channel.send(text)

    def _flush_early(self) -> None:
        early, self._early = self._early, []
        for text in early:
            self._deliver(text)

    def _event(self, kind: str, response_id: str) -> None:
        self._deliver(msgspec.json.encode({"type": kind, "event_id": new_id("event"),
                                           "response_id": response_id}).decode())

    async def _play(self, event: dict[str, Any]) -> None:
        config = self.config
        if config is None:
            return
        response_id = event.get("response_id", "")
        if response_id != self._playing:
            self._playing = response_id
            self._event("output_audio_buffer.started", response_id)
        session = config()
        self.reply.push(base64.b64decode(event.get("delta", "")),
                        session.output_audio_format, session.output_sample_rate)
        await self.reply.wait_below(PLAYOUT_LEAD_S)

    def _clear(self, response_id: str) -> None:
        self.reply.flush()
        self._playing = None
        self._finished.discard(response_id)
        self._event("output_audio_buffer.cleared", response_id)

    def _drained(self) -> None:
        response_id = self._playing
        if response_id is not None and response_id in self._finished:
            self._finished.discard(response_id)
            self._playing = None
            self._event("output_audio_buffer.stopped", response_id)

    def _input_format(self) -> tuple[str, int]:
        if self.config is None:
            return "pcm16", 24000
        session = self.config()
        return session.input_audio_format, session.input_sample_rate

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._pump is None:
            self._pump = asyncio.create_task(self._pump_audio(track), name=f"webrtc-{self.id}")

    async def _pump_audio(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                try:
                    frame = await asyncio.wait_for(track.recv(), self.media_timeout_s)
                except TimeoutError:
                    self._end_soon("no media", NoMedia(
                        f"no audio arrived for {self.media_timeout_s:g} s; the call is "
                        "ended (WEBRTC_MEDIA_TIMEOUT_S)"))
                    return
                if self.config is None:
                    continue  # the session is not up yet: nothing to hear it
                self._home(self._hear, self._audio_in.convert(frame))
        except MediaStreamError:
            self._end_soon("the caller's track ended")
