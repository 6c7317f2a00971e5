"""One phone call's media stream as a :class:`~..base.Transport`.

The session runs in ``g711_ulaw`` both ways, so audio passes through untouched: each
inbound ``media`` payload is handed to the session as audio bytes, and each reply
``response.audio.delta`` (already base64 μ-law) goes out as a Twilio ``media`` message
followed by a ``mark``. No other engine event reaches Twilio: it speaks only its own.

What the caller heard is what Twilio's ``mark`` echoes say has played. Reply audio is
sent at most ``PLAYOUT_LEAD_S`` ahead of a playout clock, as a WebRTC call does, so a
reply stays "in flight" (cancellable, its tail never synthesised) while it plays. When
the session cancels a reply it was playing (a barge-in: ``response.done`` cancelled, or
``conversation.item.truncated`` of one fully sent), the call sends ``clear`` (Twilio
drops what it buffered) and a ``conversation.item.truncate`` of its own to the session,
at the last mark echoed, so the stored assistant turn is what the caller heard (the
session's estimate, from its clock, is replaced by Twilio's word).

Frames that are not Twilio's (not JSON, unknown events, bad base64, another track) are
logged and skipped; ``stop`` or the socket closing ends the call.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections import OrderedDict

import msgspec
from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect

from orchestrator.close_codes import close_code
from orchestrator.errors import AppError
from orchestrator.realtime.transports.inbound import AUDIO_DELTAS, InboundFrames
from orchestrator.realtime.transports.twilio import protocol

log = logging.getLogger(__name__)
PLAYOUT_LEAD_S = 0.4
"""How far reply audio is sent ahead of playout: enough to ride out network jitter and a
slow TTS chunk, little enough that a barge-in's ``clear`` drops little."""
MAX_MARKS = 4096
"""Marks awaiting their echo (one per reply chunk); the oldest are forgotten beyond."""
MAX_LOGGED = 5
"""Bad frames logged per call (a hostile peer must not flood the log)."""


class TwilioCall:
    """A started media stream (``start`` read), serving one realtime session."""

    def __init__(self, socket: WebSocket, stream_sid: str, call_sid: str = "",
                 lead_s: float | None = None) -> None:
        self.socket, self.stream_sid, self.call_sid = socket, stream_sid, call_sid
        self.lead_s = PLAYOUT_LEAD_S if lead_s is None else lead_s
        self.inbound = InboundFrames()
        self._bad_frames = 0
        self._marks: OrderedDict[str, tuple[str, float]] = OrderedDict()
        """Mark name -> (item id, ms of that reply's audio sent when it was sent)."""
        self._heard: dict[str, float] = {}  # item id -> ms of its audio Twilio has played
        self._sent_ms = 0.0  # of the reply playing
        self._playing: str | None = None  # the reply (item id) whose audio went out last
        self._cleared: set[str] = set()  # replies already cut at their marks
        self._play_until = 0.0  # monotonic: when the audio sent so far has played out
        self._next_mark = 0
        self._reader = asyncio.create_task(self._read(), name=f"twilio-{stream_sid}")

    # --- Transport -------------------------------------------------------------------------

    async def receive(self) -> str | bytes | None:
        return await self.inbound.receive()

    async def send(self, payload: bytes) -> None:
        event = msgspec.json.decode(payload)
        kind = event.get("type")
        if kind in AUDIO_DELTAS:
            await self._play(event)
        elif kind == "response.done":
            response = event.get("response") or {}
            if response.get("status") == "cancelled":
                await self._barge_in(response.get("item_id"))
        elif kind == "conversation.item.truncated":  # a reply sent in full, still playing
            await self._barge_in(event.get("item_id"))
        elif kind == "error":
            log.info("twilio call %s: %s", self.call_sid or self.stream_sid,
                     (event.get("error") or {}).get("message"))

    async def refuse(self, exc: AppError, code: int | None = None) -> None:
        await self.close((exc, close_code(exc) if code is None else code))

    async def close(self, reason: tuple[AppError, int] | None = None) -> None:
        self._reader.cancel()
        if self.socket.connection_state == "disconnect":
            return
        with contextlib.suppress(Exception):  # Twilio may be gone already
            if reason is None:
                await self.socket.close()
            else:
                log.info("twilio call %s closed: %s", self.call_sid or self.stream_sid,
                         reason[0].message)
                await self.socket.close(code=reason[1], reason=reason[0].message[:120])

    # --- reply audio -----------------------------------------------------------------------

    async def _play(self, event: dict) -> None:
        item_id, delta = event.get("item_id") or "", event.get("delta") or ""
        if item_id in self._cleared or not delta:
            return
        if item_id != self._playing:
            self._playing, self._sent_ms = item_id, 0.0
        duration_ms = len(base64.b64decode(delta)) * 1000 / protocol.MEDIA_RATE  # 1 byte each
        sent = self._sent_ms = self._sent_ms + duration_ms
        self._next_mark += 1
        name = f"m{self._next_mark}"
        self._marks[name] = (item_id, sent)
        while len(self._marks) > MAX_MARKS:
            self._marks.popitem(last=False)
        await self.socket.send_text(protocol.media(self.stream_sid, delta))
        await self.socket.send_text(protocol.mark(self.stream_sid, name))
        now = time.monotonic()
        self._play_until = max(self._play_until, now) + duration_ms / 1000
        await asyncio.sleep(max(0.0, self._play_until - now - self.lead_s))

    async def _barge_in(self, item_id: str | None) -> None:
        """The session cut the reply ``item_id`` short: if it was on the line, Twilio drops
        what it buffered and the stored turn is cut to what the marks say was played."""
        if item_id is None or item_id != self._playing or item_id in self._cleared:
            return
        self._cleared.add(item_id)
        self._playing = None
        self._play_until = 0.0
        # Marks still pending belong to audio that was never heard: their echoes (Twilio
        # returns them on clear) must not count as played.
        self._marks = OrderedDict((n, m) for n, m in self._marks.items() if m[0] != item_id)
        await self.socket.send_text(protocol.clear(self.stream_sid))
        heard = self._heard.pop(item_id, 0.0)
        self.inbound.event(msgspec.json.encode({
            "type": "conversation.item.truncate", "item_id": item_id, "content_index": 0,
            "audio_end_ms": int(heard)}).decode())

    # --- Twilio's messages -----------------------------------------------------------------

    async def _read(self) -> None:
        try:
            while True:
                text = await read_text(self.socket)
                if text is None:
                    return
                if not self._handle(text):
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("twilio call %s: reading the stream failed", self.stream_sid)
        finally:
            self.inbound.end()

    def _handle(self, text: str) -> bool:
        """One frame; False once the stream has stopped."""
        message = protocol.decode(text)
        if message is None:
            self._bad("a frame that is not a Twilio message")
            return True
        match message["event"]:
            case "media":
                audio = protocol.media_payload(message)
                if audio is None:
                    self._bad("a media message without inbound base64 audio")
                elif audio:
                    self._audio(audio)
            case "mark":
                self._echoed(protocol.mark_name(message))
            case "stop":
                log.info("twilio call %s: the stream stopped", self.call_sid or self.stream_sid)
                return False
            case "dtmf":  # key presses are not part of a spoken conversation (yet)
                log.debug("twilio call %s: dtmf %r", self.stream_sid, message.get("dtmf"))
            case "connected" | "start":
                pass  # a repeat: the stream is up already
            case other:
                self._bad(f"an unknown event {other[:40]!r}")
        return True

    def _audio(self, audio: bytes) -> None:
        if not self.inbound.audio(audio):
            self._bad("caller audio while the session falls behind (dropped)")

    def _echoed(self, name: str | None) -> None:
        """Twilio has played the audio up to mark ``name`` (unknown names: not ours, or
        of a cleared reply)."""
        mark = self._marks.pop(name, None) if name is not None else None
        if mark is None:
            return
        item_id, sent_ms = mark
        self._heard[item_id] = max(self._heard.get(item_id, 0.0), sent_ms)
        while len(self._heard) > 8:  # only the latest replies can still be cut
            self._heard.pop(next(iter(self._heard)))

    def _bad(self, what: str) -> None:
        self._bad_frames += 1
        if self._bad_frames <= MAX_LOGGED:
            log.warning("twilio call %s: ignored %s", self.stream_sid, what)


async def read_text(socket: WebSocket) -> str | None:
    """The next text frame (binary ones are not Twilio's: skipped); None once closed."""
    while True:
        try:
            message = await socket.receive()
        except WebSocketDisconnect:
            return None
        if message["type"] == "websocket.disconnect":
            return None
        if message.get("text") is not None:
            return message["text"]
