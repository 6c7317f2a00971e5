"""The caller's RTP audio put in order, with lost packets concealed, before aiortc decodes it.

aiortc 1.16's audio receiver is built for playout, and it plays badly for a server that
listens: it holds 4 packets (80 ms) before it decodes the first, and a lost packet stalls
it until 16 packets have piled up behind the hole; it then throws away the 4 good packets
it was holding, and lags 14 packets (280 ms) behind for the rest of the call, because it
lets out one frame per packet that comes in. Measured on its own class: one loss in 100
packets costs 4 more; three cost 22 of 97 received (``tests/unit/realtime/test_jitter.py``).
Speech with 5 % loss then reached the recogniser with a quarter of it missing.

:class:`PacketOrder` sits in front of it instead. A packet that is next in sequence goes on
at once (a server needs no playout delay: VAD and STT do not care when a frame comes,
only that it does); one that came early waits for the ones before it; a packet still
missing once ``wait`` later packets have come is given up, and an empty Opus frame (its
TOC byte with no data) takes its place, which the decoder turns into 20 ms of concealed
sound (RFC 6716 §4.4, packet loss concealment), so the turn keeps its length and the gap
is not a click of silence. aiortc's own buffer is replaced by one that lets each ordered
packet through as its frame.

The receiver reports the concealed packets as received in its RTCP receiver reports (its
statistics are fed after this buffer); the sender sees less loss than there was.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc.jitterbuffer import JitterFrame
from aiortc.rtp import RtpPacket

log = logging.getLogger(__name__)
SEQUENCE = 1 << 16
RESYNC_GAP = 100
"""A jump of this many sequence numbers is a new stream (a restarted sender), not loss."""


def _ahead(seq: int, of: int) -> int:
    """How far ``seq`` is after ``of`` in 16-bit sequence space (negative: before it)."""
    delta = (seq - of) % SEQUENCE
    return delta - SEQUENCE if delta >= SEQUENCE // 2 else delta


class PacketOrder:
    """RTP packets in arrival order -> the same in sequence order, each as soon as the ones
    before it are in or given up (``wait``: later packets to wait for a missing one)."""

    def __init__(self, wait: int = 3) -> None:
        self.wait = wait
        self.next_seq: int | None = None
        self.held: dict[int, RtpPacket] = {}
        self.last: RtpPacket | None = None
        self.concealed = 0
        """Packets given up and concealed so far."""
        self.late = 0
        """Packets that came after they had been given up (dropped)."""

    def push(self, packet: RtpPacket) -> list[RtpPacket]:
        seq = packet.sequence_number
        if self.next_seq is None:
            self.next_seq = seq
        ahead = _ahead(seq, self.next_seq)
        if seq in self.held or -RESYNC_GAP < ahead < 0:
            self.late += 1  # a duplicate, or too late: its place was concealed
            return []
        out: list[RtpPacket] = []
        if not 0 <= ahead < RESYNC_GAP:  # a new stream: what is held goes first, in order
            start = self.next_seq
            out = [self.held[s] for s in sorted(self.held, key=lambda s: _ahead(s, start))]
            self.held.clear()
            self.next_seq = seq
        self.held[seq] = packet
        return out + self._release()

    def _release(self) -> list[RtpPacket]:
        out: list[RtpPacket] = []
        assert self.next_seq is not None
        while self.held:
            packet = self.held.pop(self.next_seq, None)
            if packet is None:
                if len(self.held) < self.wait:
                    break
                packet = self._conceal(self.next_seq)
            out.append(packet)
            self.last = packet
            self.next_seq = (self.next_seq + 1) % SEQUENCE
        return out

    def _conceal(self, seq: int) -> RtpPacket:
        """An empty Opus frame in place of packet ``seq``: the previous packet's TOC byte
        (code 0: one frame) with no frame data, timed between its neighbours."""
        self.concealed += 1
        after = min(self.held.values(), key=lambda p: _ahead(p.sequence_number, seq))
        before = self.last if self.last is not None else after
        steps = _ahead(after.sequence_number, before.sequence_number) or 1
        step = ((after.timestamp - before.timestamp) % (1 << 32)) // steps
        timestamp = (before.timestamp + step * _ahead(seq, before.sequence_number)) % (1 << 32)
        template = before if before.payload else after
        payload = bytes([template.payload[0] & 0xFC]) if template.payload else b""
        return RtpPacket(payload_type=template.payload_type, marker=0, sequence_number=seq,
                         timestamp=timestamp, ssrc=template.ssrc, payload=payload)


class _InOrder:
    """In place of aiortc's audio buffer, behind :class:`PacketOrder`: each packet (an
    Opus packet is one frame) goes on as its frame at once."""

    capacity = 1

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)  # type: ignore[attr-defined]


def order_audio(receiver: Any, wait: int) -> PacketOrder | None:
    """Put :class:`PacketOrder` in front of an aiortc audio receiver's decoder; returns it,
    or None when this aiortc does not look like the one this was written for (1.16): the
    receiver is then left as it is."""
    buffer = "_RTCRtpReceiver__jitter_buffer"
    handle: Callable[[RtpPacket, int], Awaitable[None]] | None = \
        getattr(receiver, "_handle_rtp_packet", None)
    if handle is None or not hasattr(receiver, buffer) or \
            getattr(receiver, "_RTCRtpReceiver__kind", None) != "audio":
        log.warning("webrtc: this aiortc's receiver is not the one expected; its own "
                    "jitter buffer stays")
        return None
    order = PacketOrder(wait)
    setattr(receiver, buffer, _InOrder())

    async def ordered(packet: RtpPacket, arrival_time_ms: int) -> None:
        for ready in order.push(packet):
            await handle(ready, arrival_time_ms)

    receiver._handle_rtp_packet = ordered
    return order


def order_call_audio(pc: Any, wait: int) -> PacketOrder | None:
    """:func:`order_audio` on the audio receiver of a peer connection whose remote
    description is set; returns its order (None: no audio, or aiortc not as expected)."""
    for transceiver in pc.getTransceivers():
        if transceiver.kind == "audio":
            return order_audio(transceiver.receiver, wait)
    return None
