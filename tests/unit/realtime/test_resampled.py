"""A voice's pieces resampled as one signal: a sentence streamed in pieces joins without the
dip that resampling each piece on its own leaves at every join."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
import pytest

from orchestrator.realtime.audio import resample, resampled

pytestmark = pytest.mark.asyncio
SOURCE, TARGET = 22050, 24000


@dataclass
class Chunk:
    samples: np.ndarray
    sample_rate: int


def voice(rate: int = SOURCE) -> np.ndarray:
    """1.2 s of a steady vowel-like tone: any seam shows as a dip in its level."""
    t = np.arange(int(1.2 * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 660 * t)).astype(
        np.float32)


async def pieces_of(audio: np.ndarray, sizes: list[int]) -> AsyncIterator[Chunk]:
    start = 0
    for size in sizes:
        yield Chunk(audio[start:start + size], SOURCE)
        start += size
    yield Chunk(audio[start:], SOURCE)


async def joined(audio: np.ndarray, sizes: list[int], rate: int | None) -> tuple[np.ndarray, set]:
    parts = [(samples, out_rate) async for samples, out_rate in
             resampled(pieces_of(audio, sizes), rate)]
    return np.concatenate([p for p, _ in parts]), {r for _, r in parts}


async def test_pieces_join_as_the_whole_signal_resampled() -> None:
    audio = voice()
    sizes = [20 * 256, 40 * 256, 80 * 256]  # Piper's first pieces
    out, rates = await joined(audio, sizes, TARGET)
    whole = resample(audio, SOURCE, TARGET)
    assert rates == {TARGET}
    assert abs(out.size - whole.size) <= 2  # nothing lost: the filter's tail comes last
    inner = slice(200, min(out.size, whole.size) - 200)
    assert float(np.max(np.abs(out[inner] - whole[inner]))) < 0.02
    # Each piece resampled on its own dips at the joins (the filter sees zeros there).
    alone = np.concatenate([resample(audio[a:b], SOURCE, TARGET) for a, b in
                            zip([0, 5120, 15360, 35840], [5120, 15360, 35840, audio.size],
                                strict=True)])
    assert float(np.max(np.abs(alone[inner] - whole[inner]))) > 0.1


async def test_no_rate_asked_keeps_the_voices_own() -> None:
    out, rates = await joined(voice(), [5120], None)
    assert rates == {SOURCE} and out.size == voice().size
