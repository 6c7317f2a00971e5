"""A WebRTC caller on aiortc, for the benchmarks and the tests: a microphone track that
plays what it is given (then silence, 20 ms a frame on the wall clock, as a live
microphone does), the ``oai-events`` data channel, the remote track's audio, and optional
packet loss on both directions (simulated on this side of the wire).

:class:`CallSocket` lets the voice benchmark drive a call as it drives a WebSocket:
``send`` takes PCM16 at 24 kHz or a JSON event, ``recv`` gives server events, and the
reply audio heard on the track comes back as ``response.output_audio.delta`` events of
its own (WebRTC sends none), so every protocol is timed by one code path.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fractions
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import av
import httpx
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

RATE = 48000
FRAME = RATE // 50
HEARD_DELTA = "response.output_audio.delta"
"""The event a :class:`CallSocket` makes of reply audio heard on the track."""
AUDIBLE = 1e-3
"""A decoded frame with a sample above this is sound (Opus decodes silence to ~0)."""


def _resample(samples: np.ndarray, source: int, target: int) -> np.ndarray:
    if source == target or not len(samples):
        return samples.astype(np.float32)
    from scipy.signal import resample_poly

    g = np.gcd(source, target)
    return resample_poly(samples, target // g, source // g).astype(np.float32)


class Microphone(MediaStreamTrack):
    """Plays queued float32 audio, silence in between, 20 ms per frame."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pending = np.zeros(0, dtype=np.float32)
        self._start: float | None = None
        self._timestamp = 0
        self._unmuted = asyncio.Event()
        self._unmuted.set()

    def say(self, samples: np.ndarray, rate: int) -> float:
        """Queue speech (float32 at ``rate``); returns its seconds."""
        self._pending = np.concatenate([self._pending, _resample(samples, rate, RATE)])
        return len(samples) / rate

    def stop_media(self) -> None:
        """Send no frames at all from now on (a caller whose media stopped)."""
        self._unmuted.clear()

    async def recv(self) -> av.AudioFrame:
        await self._unmuted.wait()
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._timestamp += FRAME
            wait = self._start + self._timestamp / RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        chunk = np.zeros(FRAME, dtype=np.float32)
        take = min(FRAME, len(self._pending))
        chunk[:take] = self._pending[:take]
        self._pending = self._pending[take:]
        frame = av.AudioFrame.from_ndarray(
            (np.clip(chunk, -1, 1) * 32767).astype(np.int16).reshape(1, -1), format="s16",
            layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._timestamp
        frame.time_base = fractions.Fraction(1, RATE)
        return frame


class Peer:
    """One side of a call: offer, answer, talk, listen, read events."""

    def __init__(self, data_channel: bool = True, loss: float = 0.0,
                 on_audio: Callable[[np.ndarray], None] | None = None,
                 on_event: Callable[[dict[str, Any]], None] | None = None,
                 ordered_receive: bool = False) -> None:
        self.pc = RTCPeerConnection()
        self.microphone = Microphone()
        self.pc.addTrack(self.microphone)
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.heard: list[np.ndarray] = []
        """The remote track's audio, frame by frame (float32 mono, 48 kHz)."""
        self.on_audio = on_audio
        self.loss = loss
        self.lost = 0
        self.ordered_receive = ordered_receive
        """Receive as the server does (packets in order, each at once, losses concealed)
        instead of through aiortc's 80 ms buffer: a caller that holds what a browser's
        NetEq holds at low jitter, at its least."""
        self.channel = self.pc.createDataChannel("oai-events") if data_channel else None
        self.opened = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self.on_event = on_event
        if self.channel is not None:
            self.channel.on("message", self._on_message)
            self.channel.on("open", self.opened.set)
        self.pc.on("track", self._on_track)

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        if self.ordered_receive:
            from orchestrator.realtime.transports.webrtc.jitter import order_call_audio

            order_call_audio(self.pc, 3)
        if self.loss:
            self._lose_packets()

    async def call(self, base_url: str, headers: dict[str, str] | None = None,
                   query: str = "") -> str:
        """POST the offer to ``/v1/realtime/calls``, take the answer, wait for the data
        channel; returns the call's URL path."""
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            response = await http.post(f"/v1/realtime/calls{query}", content=await self.offer(),
                                       headers={"Content-Type": "application/sdp",
                                                **(headers or {})})
        if response.status_code != 201:
            raise RuntimeError(f"call refused: {response.status_code} {response.text}")
        await self.answer(response.text)
        await asyncio.wait_for(self.opened.wait(), 15)
        return response.headers["location"]

    def _on_message(self, message: str | bytes) -> None:
        event = json.loads(message)
        if self.on_event is not None:
            self.on_event(event)  # as it arrives, in order with the audio frames
        self.events.put_nowait(event)

    def send(self, type: str, **fields: Any) -> None:
        assert self.channel is not None
        self.channel.send(json.dumps({"type": type, **fields}))

    def heard_audio(self) -> np.ndarray:
        return np.concatenate(self.heard) if self.heard else np.zeros(0, dtype=np.float32)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._tasks.append(asyncio.create_task(self._listen(track)))

    async def _listen(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(Exception):
            while True:
                frame = await track.recv()
                pcm = frame.to_ndarray().reshape(-1).astype(np.float32) / 32768.0
                if frame.layout.name == "stereo":
                    pcm = pcm.reshape(-1, 2).mean(axis=1)
                pcm = _resample(pcm, frame.sample_rate, RATE)
                self.heard.append(pcm)
                if self.on_audio is not None:
                    self.on_audio(pcm)

    def _lose_packets(self) -> None:
        """Drop ``loss`` of the RTP packets each way, at random (RTCP and data pass)."""
        lossy = random.Random(7)
        for transceiver in self.pc.getTransceivers():
            dtls = transceiver.sender.transport
            receiver = transceiver.receiver
            send_rtp = dtls._send_rtp
            handle_rtp = receiver._handle_rtp_packet

            async def send(data: bytes, send_rtp: Callable[[bytes], Awaitable[None]] = send_rtp
                           ) -> None:
                if 128 <= data[1] <= 223 or lossy.random() >= self.loss:  # RTCP: kept
                    await send_rtp(data)
                else:
                    self.lost += 1

            async def handle(packet: Any, arrival_time_ms: int,
                             handle_rtp: Any = handle_rtp) -> None:
                if lossy.random() >= self.loss:  # aiortc passes the time by keyword
                    await handle_rtp(packet, arrival_time_ms=arrival_time_ms)
                else:
                    self.lost += 1

            dtls._send_rtp = send
            receiver._handle_rtp_packet = handle

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()


class CallSocket:
    """A call driven like the benchmark's WebSocket (see the module's docstring)."""

    def __init__(self, base_url: str, headers: dict[str, str] | None, pcm_rate: int,
                 loss: float = 0.0, query: str = "", ordered_receive: bool = False) -> None:
        self.base_url, self.headers, self.pcm_rate = base_url, headers, pcm_rate
        self.query = query
        self.peer = Peer(loss=loss, on_audio=self._heard, on_event=self._playout,
                         ordered_receive=ordered_receive)
        self.location = ""
        self._playing = False  # between output_audio_buffer.started and .stopped/.cleared
        self._audible = False  # the playing reply's first sound has come

    async def __aenter__(self) -> CallSocket:
        self.location = await self.peer.call(self.base_url, self.headers, self.query)
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as http:
                await http.post(f"{self.location}/hangup", headers=self.headers or {})
        await self.peer.close()

    async def send(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
            self.peer.microphone.say(samples, self.pcm_rate)
        else:
            assert self.peer.channel is not None
            self.peer.channel.send(data)

    async def recv(self) -> str:
        return json.dumps(await self.peer.events.get())

    def _playout(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "output_audio_buffer.started":
            self._playing, self._audible = True, False
        elif kind in ("output_audio_buffer.stopped", "output_audio_buffer.cleared"):
            self._playing = False

    def _heard(self, pcm: np.ndarray) -> None:
        """Reply audio as the delta events the benchmark counts: from the first audible
        frame after ``output_audio_buffer.started`` until the playout stops (frames that
        come later, held in the jitter buffer, belong to no reply)."""
        if not self._playing:
            return
        if not self._audible:
            if float(np.abs(pcm).max(initial=0.0)) <= AUDIBLE:
                return
            self._audible = True
        pcm16 = (np.clip(_resample(pcm, RATE, self.pcm_rate), -1, 1) * 32767).astype("<i2")
        self.peer.events.put_nowait({"type": HEARD_DELTA,
                                     "delta": base64.b64encode(pcm16.tobytes()).decode()})
