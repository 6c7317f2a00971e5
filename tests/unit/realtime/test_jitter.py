"""The caller's RTP audio put in order (:mod:`orchestrator.realtime.transports.webrtc.jitter`),
against aiortc 1.16's own audio jitter buffer on the same packets."""

from __future__ import annotations

import numpy as np
from aiortc.codecs.opus import OpusDecoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

from orchestrator.realtime.transports.webrtc.jitter import PacketOrder, _InOrder

STEP = 960  # 20 ms of 48 kHz


def packet(seq: int) -> RtpPacket:
    p = RtpPacket(payload_type=111, sequence_number=seq % 65536,
                  timestamp=(seq * STEP) % (1 << 32), ssrc=7, payload=bytes([0xFC, seq % 256]))
    p._data = p.payload  # type: ignore[attr-defined]
    return p


def arrivals(lost: set[int], n: int = 100, start: int = 0) -> list[RtpPacket]:
    return [packet(s) for s in range(start, start + n) if s not in lost]


def released_when(packets: list[RtpPacket], push) -> dict[int, int]:  # type: ignore[no-untyped-def]
    """Sequence number -> how many packets had arrived when it was let out."""
    out: dict[int, int] = {}
    for arrived, p in enumerate(packets, 1):
        for seq in push(p):
            out.setdefault(seq, arrived)
    return out


def aiortc_push(buffer: JitterBuffer):  # type: ignore[no-untyped-def]
    def push(p: RtpPacket) -> list[int]:
        _, frame = buffer.add(p)
        return [frame.timestamp // STEP] if frame is not None else []
    return push


def order_push(order: PacketOrder):  # type: ignore[no-untyped-def]
    return lambda p: [r.sequence_number for r in order.push(p)]


def test_aiortc_loses_good_packets_and_lags_after_one_loss() -> None:
    """Why the order exists: aiortc's buffer, after one lost packet, drops the 4 it held
    and then lets each frame out 14 packets late."""
    sent = arrivals({20})
    got = released_when(sent, aiortc_push(JitterBuffer(capacity=16, prefetch=4)))
    assert sorted(set(range(100)) - set(got) - {20})[:4] == [16, 17, 18, 19]
    lag = {p.sequence_number: got[p.sequence_number] - arrived
           for arrived, p in enumerate(sent, 1) if p.sequence_number in got}
    assert lag[10] == 4 and lag[60] == 14  # packets that came after it, before it went


def test_in_order_packets_go_on_at_once() -> None:
    order = PacketOrder(wait=3)
    got = released_when(arrivals(set()), order_push(order))
    assert all(got[s] == s + 1 for s in range(100))  # let out as each arrives


def test_a_lost_packet_is_concealed_and_nothing_else_is_lost() -> None:
    order = PacketOrder(wait=3)
    released: list[RtpPacket] = []
    for p in arrivals({20, 50, 51}):
        released += order.push(p)
    assert [r.sequence_number for r in released] == list(range(100))
    assert order.concealed == 3
    concealed = [r for r in released if r.sequence_number in (20, 50, 51)]
    assert all(r.payload == bytes([0xFC]) for r in concealed)  # TOC byte, no frame data
    assert [r.timestamp for r in concealed] == [20 * STEP, 50 * STEP, 51 * STEP]
    got = released_when(arrivals({20}), order_push(PacketOrder(wait=3)))
    assert got[60] == 60  # no lag after the loss: packet 60, the 60th to arrive, goes at once
    assert got[20] == got[21] == 23  # the lost one is given up 3 packets later


def test_a_reordered_packet_waits_for_the_one_before_it() -> None:
    order = PacketOrder(wait=3)
    assert [p.sequence_number for p in order.push(packet(0))] == [0]
    assert [p.sequence_number for p in order.push(packet(2))] == []
    assert [p.sequence_number for p in order.push(packet(1))] == [1, 2]
    assert order.concealed == 0


def test_a_packet_later_than_the_wait_is_dropped() -> None:
    order = PacketOrder(wait=2)
    for seq in (0, 2, 3):
        order.push(packet(seq))
    assert order.concealed == 1 and order.next_seq == 4
    assert order.push(packet(1)) == [] and order.late == 1
    assert order.push(packet(3)) == [] and order.late == 2  # a duplicate


def test_a_jump_in_sequence_is_a_new_stream_not_loss() -> None:
    order = PacketOrder(wait=3)
    order.push(packet(10))
    assert [p.sequence_number for p in order.push(packet(5000))] == [5000]
    assert order.concealed == 0
    wrapped = released_when(arrivals(set(), n=10, start=65530), order_push(PacketOrder()))
    assert sorted(wrapped) == [0, 1, 2, 3, 65530, 65531, 65532, 65533, 65534, 65535]


def test_the_decoder_conceals_an_empty_frame_with_sound() -> None:
    """What a concealed packet becomes: 20 ms of sound continuing the speech."""
    from fractions import Fraction

    from aiortc.codecs.opus import OpusEncoder
    from av import AudioFrame

    encoder, decoder = OpusEncoder(), OpusDecoder()
    payloads = []
    for i in range(4):
        t = np.arange(960) + i * 960
        tone = (0.3 * np.sin(2 * np.pi * 220 * t / 48000) * 32767).astype(np.int16)
        frame = AudioFrame.from_ndarray(tone.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, i * 960, Fraction(1, 48000)
        payloads += encoder.encode(frame)[0]
    order = PacketOrder(wait=1)
    released = []
    for seq, payload in enumerate(payloads):
        if seq == 2:
            continue
        p = RtpPacket(payload_type=111, sequence_number=seq, timestamp=seq * 960, ssrc=1,
                      payload=payload)
        released += order.push(p)
    inner = _InOrder()
    levels = []
    for p in released:
        p._data = p.payload  # type: ignore[attr-defined]
        _, frame = inner.add(p)
        assert isinstance(frame, JitterFrame)
        (decoded,) = decoder.decode(frame)
        levels.append((p.sequence_number, decoded.samples,
                       int(np.abs(decoded.to_ndarray()).max())))
    assert [(seq, n) for seq, n, _ in levels] == [(0, 960), (1, 960), (2, 960), (3, 960)]
    assert levels[2][2] > 1000  # concealed: sound, not a hole of silence
