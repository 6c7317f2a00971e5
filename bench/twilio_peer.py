"""Twilio's side of a bidirectional Media Stream, for the tests and ``bench voice``: what
Twilio does on a ``<Connect><Stream>`` call, over a real WebSocket.

It sends ``connected`` then ``start`` (μ-law 8 kHz mono, the TwiML's parameters), then a
``media`` message every 20 ms of "microphone" audio (silence unless :meth:`say` queued
speech), paced in real time as a phone line is. Reply audio is played on a simulated
line: each ``media`` payload plays after the one before, from ``playout_delay_s`` after
the first arrived (a jitter buffer, the network); a ``mark`` is echoed once the audio
before it has played; ``clear`` drops what has not played and echoes the marks still
pending, as Twilio does. ``stop`` ends the call.

:class:`StreamSocket` lets the voice benchmark drive a call as it drives a WebSocket (see
:mod:`bench.webrtc_peer`'s ``CallSocket``): the stream carries no server events, so the
reply audio played on the line comes back as ``response.output_audio.delta`` events of its
own, and a ``response.done`` once the line has gone quiet.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import websockets

from orchestrator.realtime.protocol import g711

RATE = 8000
FRAME = RATE // 50  # 20 ms


@dataclass
class Segment:
    """A reply ``media`` payload on the line: plays from ``start`` (monotonic)."""

    start: float
    ulaw: bytes

    def played(self, now: float) -> bytes:
        return self.ulaw[:max(0, min(len(self.ulaw), int((now - self.start) * RATE)))]


@dataclass
class PhoneCall:
    url: str
    parameters: dict[str, str] = field(default_factory=dict)
    playout_delay_s: float = 0.0
    stream_sid: str = "MZ00000000000000000000000000000001"
    call_sid: str = "CA00000000000000000000000000000001"
    media_format: dict[str, Any] = field(default_factory=lambda: {
        "encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1})
    received: list[dict] = field(default_factory=list)
    """Every message the server sent, in order."""
    echoed: list[str] = field(default_factory=list)
    """Mark names echoed because their audio played (not those a clear dropped)."""
    clears: list[float] = field(default_factory=list)
    """When each ``clear`` arrived (monotonic)."""
    heard_at_clear: list[int] = field(default_factory=list)
    """Bytes of reply audio played when each ``clear`` arrived."""
    on_media: Callable[[bytes], None] | None = None
    """Called with each reply payload (μ-law) as it arrives."""

    def __post_init__(self) -> None:
        self.ws: Any = None
        self._segments: list[Segment] = []
        self._line_end = 0.0
        self._marks: list[tuple[float, str]] = []  # (plays at, name), in order
        self._speech: list[np.ndarray] = []
        self._tasks: list[asyncio.Task] = []
        self._chunk = 0
        self.last_media = 0.0
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""

    # --- the call --------------------------------------------------------------------------

    async def __aenter__(self) -> PhoneCall:
        await self.open()
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.hang_up()

    async def open(self) -> None:
        self.ws = await websockets.connect(self.url, max_size=None)
        self._tasks.append(asyncio.create_task(self._listen()))
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})

    async def start(self) -> None:
        await self.send({"event": "start", "sequenceNumber": "1", "streamSid": self.stream_sid,
                         "start": {"accountSid": "AC0", "streamSid": self.stream_sid,
                                   "callSid": self.call_sid, "tracks": ["inbound"],
                                   "customParameters": self.parameters,
                                   "mediaFormat": self.media_format}})
        self._tasks.append(asyncio.create_task(self._microphone()))
        self._tasks.append(asyncio.create_task(self._line()))

    async def send(self, message: dict | str | bytes) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.send(message if isinstance(message, str | bytes)
                               else json.dumps(message))

    def say(self, samples: np.ndarray) -> None:
        """Speak ``samples`` (float32, 8 kHz) into the call from the next frame on."""
        self._speech.append(np.asarray(samples, dtype=np.float32))

    async def stop(self) -> None:
        """Twilio's ``stop``: the caller hung up."""
        await self.send({"event": "stop", "streamSid": self.stream_sid,
                         "stop": {"accountSid": "AC0", "callSid": self.call_sid}})

    async def hang_up(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        if self.ws is not None:
            await self.ws.close()

    # --- what came back --------------------------------------------------------------------

    def of(self, event: str) -> list[dict]:
        return [m for m in self.received if m.get("event") == event]

    def heard(self, now: float | None = None) -> bytes:
        """The reply audio (μ-law) played on the line so far."""
        now = time.monotonic() if now is None else now
        return b"".join(s.played(now) for s in self._segments)

    def heard_audio(self) -> np.ndarray:
        return g711.decode(self.heard(), "ulaw")

    def sent_ms(self, mark: str) -> float:
        """Milliseconds of reply audio sent before ``mark`` (in this call)."""
        total = 0
        for message in self.received:
            if message.get("event") == "media":
                total += len(base64.b64decode(message["media"]["payload"]))
            elif message.get("event") == "mark" and message["mark"]["name"] == mark:
                return total * 1000 / RATE
        raise KeyError(mark)

    @property
    def playing(self) -> bool:
        return time.monotonic() < self._line_end or bool(self._marks)

    async def until(self, check: Any, wait_s: float = 20.0) -> None:
        deadline = time.monotonic() + wait_s
        while not check():
            if time.monotonic() > deadline:
                raise TimeoutError("the call did not get there")
            await asyncio.sleep(0.02)

    # --- the line --------------------------------------------------------------------------

    async def _listen(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                self.received.append(message)
                self._on(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code, self.close_reason = self.ws.close_code, self.ws.close_reason or ""
            self.closed.set()

    def _on(self, message: dict) -> None:
        now = time.monotonic()
        match message.get("event"):
            case "media":
                assert message["streamSid"] == self.stream_sid
                ulaw = base64.b64decode(message["media"]["payload"])
                start = max(self._line_end, now + (self.playout_delay_s if not self._segments
                                                   else 0.0))
                self._segments.append(Segment(start, ulaw))
                self._line_end = start + len(ulaw) / RATE
                self.last_media = now
                if self.on_media is not None:
                    self.on_media(ulaw)
            case "mark":
                assert message["streamSid"] == self.stream_sid
                self._marks.append((max(self._line_end, now), message["mark"]["name"]))
            case "clear":
                assert message["streamSid"] == self.stream_sid
                self.clears.append(now)
                self.heard_at_clear.append(len(self.heard(now)))
                self._segments = [Segment(s.start, s.played(now)) for s in self._segments]
                self._line_end = now
                pending, self._marks = self._marks, []
                for _, name in pending:  # Twilio answers the marks a clear dropped
                    asyncio.get_running_loop().create_task(self._echo(name))

    async def _echo(self, name: str) -> None:
        await self.send({"event": "mark", "streamSid": self.stream_sid,
                         "sequenceNumber": "0", "mark": {"name": name}})

    async def _line(self) -> None:
        """Echo each mark once its audio has played."""
        while True:
            now = time.monotonic()
            while self._marks and self._marks[0][0] <= now:
                _, name = self._marks.pop(0)
                self.echoed.append(name)
                await self._echo(name)
            await asyncio.sleep(0.01)

    async def _microphone(self) -> None:
        started = time.monotonic()
        pending = np.zeros(0, dtype=np.float32)
        while True:
            if len(pending) < FRAME and self._speech:
                pending = np.concatenate([pending, self._speech.pop(0)])
            frame = pending[:FRAME]
            pending = pending[FRAME:]
            if len(frame) < FRAME:
                frame = np.concatenate([frame, np.zeros(FRAME - len(frame), np.float32)])
            self._chunk += 1
            await self.send({"event": "media", "sequenceNumber": str(self._chunk + 1),
                             "streamSid": self.stream_sid,
                             "media": {"track": "inbound", "chunk": str(self._chunk),
                                       "timestamp": str(self._chunk * 20),
                                       "payload": base64.b64encode(
                                           g711.encode(frame, "ulaw")).decode()}})
            # real time, without drift: frame n leaves at n * 20 ms
            await asyncio.sleep(max(0.0, started + self._chunk * 0.02 - time.monotonic()))


def stream_of(twiml: str) -> tuple[str, dict[str, str]]:
    """(Stream url, its parameters) from ``<Connect><Stream>`` TwiML."""
    url = re.search(r'<Stream url="([^"]+)"', twiml)
    assert url is not None, twiml
    return url.group(1), dict(re.findall(r'<Parameter name="([^"]+)" value="([^"]*)"/>',
                                         twiml))


HEARD_DELTA = "response.output_audio.delta"
QUIET_S = 0.5
"""A reply has ended once its audio has played, every mark is echoed and no media has come
for this long (the stream says nothing else)."""


class StreamSocket:
    """A phone call driven like the benchmark's WebSocket: ``send`` takes PCM16 at
    ``pcm_rate`` (the caller's voice; JSON events are dropped: a phone line has none),
    ``recv`` gives a ``session.created``, the reply audio as ``HEARD_DELTA`` events
    (PCM16 at ``pcm_rate``) and a ``response.done`` once the line has gone quiet. The
    key in ``headers`` is the stream's ``token``; ``?session_id=`` on the URL becomes a
    parameter (Twilio drops a stream URL's query: TwiML's ``<Parameter>`` carries it)."""

    def __init__(self, url: str, headers: dict[str, str] | None, pcm_rate: int) -> None:
        parts = urlsplit(url)
        parameters = dict(parse_qsl(parts.query))
        scheme, _, key = (headers or {}).get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and key:
            parameters["token"] = key
        self.pcm_rate = pcm_rate
        self.call = PhoneCall(parts._replace(query="").geturl(), parameters,
                              on_media=self._media)
        self.events: asyncio.Queue[dict] = asyncio.Queue()
        self._in_reply = False
        self._watch: asyncio.Task | None = None

    async def __aenter__(self) -> StreamSocket:
        await self.call.__aenter__()
        self.events.put_nowait({"type": "session.created", "session": {}})
        self._watch = asyncio.create_task(self._watch_line())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._watch is not None:
            self._watch.cancel()
        await self.call.stop()
        await self.call.hang_up()

    async def send(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
            self.call.say(_resample(samples, self.pcm_rate, RATE))

    async def recv(self) -> str:
        return json.dumps(await self.events.get())

    def _media(self, ulaw: bytes) -> None:
        self._in_reply = True
        samples = _resample(g711.decode(ulaw, "ulaw"), RATE, self.pcm_rate)
        pcm16 = (np.clip(samples, -1, 1) * 32767).astype("<i2")
        self.events.put_nowait({"type": HEARD_DELTA,
                                "delta": base64.b64encode(pcm16.tobytes()).decode()})

    async def _watch_line(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            if self._in_reply and not self.call.playing and \
                    time.monotonic() - self.call.last_media > QUIET_S:
                self._in_reply = False
                self.events.put_nowait({"type": "response.done",
                                        "response": {"status": "completed"}})


def _resample(samples: np.ndarray, source: int, target: int) -> np.ndarray:
    if source == target or not len(samples):
        return samples.astype(np.float32)
    from scipy.signal import resample_poly

    return resample_poly(samples, target, source).astype(np.float32)
