"""Where to cut long audio: at the quietest 100 ms near each limit, so a cut rarely falls
inside a word. Used by the Moonshine runtime (its 30 s windows) and by the orchestrator's
speech service (requests of at most ``STT_CHUNK_SECONDS``). numpy only."""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16_000
FRAME = SAMPLE_RATE // 10  # 100 ms


def quietest(audio: np.ndarray, frame: int = FRAME) -> int:
    """Offset of the middle of the quietest ``frame`` of ``audio`` (its end when shorter
    than a frame)."""
    if audio.size < frame:
        return audio.size
    count = audio.size // frame
    energy = (audio[:count * frame].reshape(count, frame) ** 2).mean(axis=1)
    return int(energy.argmin()) * frame + frame // 2


def quiet_bounds(audio: np.ndarray, limit: int, search: int) -> list[tuple[int, int]]:
    """``[start, end)`` of pieces of at most ``limit`` samples, each cut at the quietest
    100 ms of the last ``search`` samples (at most a quarter of ``limit``) before it."""
    search = min(search, limit // 4)
    bounds, start = [], 0
    while audio.size - start > limit:
        end = start + limit - search + quietest(audio[start + limit - search:start + limit])
        bounds.append((start, end))
        start = end
    bounds.append((start, audio.size))
    return bounds
