"""Kokoro-82M voices: Korean phonemes -> vocabulary ids -> audio at 24 kHz.

One graph serves every Kokoro voice of a version (a voice is a style table, ``[510, 1,
256]`` per voice in ``voices.npz``: row ``n - 1`` for ``n`` tokens, as Kokoro and the
package it comes from pick it). Inputs ``tokens`` int64 ``[1, n + 2]`` (ids wrapped in
0 … 0), ``style`` float32 ``[1, 256]``, ``speed`` float32 ``[1]``; output float32 audio.

The audio is cut to where the voice is audible (the package's own trim: 30 ms around
the first and last sample above 0.01), so the first sound comes without the graph's
leading silence, and a pause of ``pause_s`` follows each sentence. More than
``max_tokens`` ids (a very long sentence) are synthesised in pieces cut at a space or a
mark and joined.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import korean

PAD_ID = 0
TRIM_THRESHOLD = 0.01
TRIM_PAD_S = 0.03
BREAK_SYMBOLS = " ,.?!;:…"


def style_row(styles: np.ndarray, tokens: int) -> np.ndarray:
    """The style vector for ``tokens`` ids (without the wrapping zeros)."""
    index = min(max(tokens, 1), len(styles)) - 1
    return np.asarray(styles[index], np.float32).reshape(1, -1)


def feeds(ids: list[int], style: np.ndarray, speed: float) -> dict[str, np.ndarray]:
    return {"tokens": np.asarray([[PAD_ID, *ids, PAD_ID]], np.int64),
            "style": style, "speed": np.asarray([speed], np.float32)}


def trim(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Audio from 30 ms before its first audible sample to 30 ms after its last."""
    loud = np.flatnonzero(np.abs(audio) > TRIM_THRESHOLD)
    if loud.size == 0:
        return audio
    pad = int(TRIM_PAD_S * sample_rate)
    return audio[max(0, loud[0] - pad):loud[-1] + pad]


def load_styles(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


class KokoroVoice:
    """Same interface as :class:`.voices.Voice`: ``text_ids`` then ``run``."""

    def __init__(self, config: Any, session: Any, styles: np.ndarray) -> None:
        self.config = config
        self.session = session
        self.styles = styles
        self.vocab = {symbol: ids[0] for symbol, ids in config.phoneme_id_map.items()}
        self.breaks = {self.vocab[s] for s in BREAK_SYMBOLS if s in self.vocab}

    def text_ids(self, text: str) -> tuple[list[int], list[str]]:
        """Vocabulary ids of one sentence, and the symbols dropped (not in the vocabulary)."""
        symbols = korean.phonemes(text)
        ids = [self.vocab[s] for s in symbols if s in self.vocab]
        dropped = [s for s in symbols if s not in self.vocab]
        if not [s for s in symbols if s in self.vocab and s not in BREAK_SYMBOLS]:
            return [], dropped
        return ids, dropped

    def run(self, ids: list[int], *, noise_scale: float, length_scale: float, noise_w: float,
            speaker: int | None = None) -> np.ndarray:
        """Audio for ``ids`` at ``1 / length_scale`` speed (Kokoro has no noise inputs:
        the synthesizer refuses noise settings for its voices)."""
        speed = 1.0 / length_scale
        rate = self.config.sample_rate
        pieces = [trim(self.raw(piece, speed), rate) for piece in self.pieces(ids)]
        pause = np.zeros(int(self.config.pause_s * rate), np.float32)
        return np.concatenate([*[np.concatenate([p, pause]) for p in pieces[:-1]],
                               pieces[-1], pause]).astype(np.float32)

    def stream(self, ids: list[int], **settings: Any) -> Iterator[np.ndarray]:
        """One piece: the whole sentence (a Kokoro decoder normalises over the whole
        sequence, so it cannot be decoded in pieces: docs/benchmarks/tts.md)."""
        yield self.run(ids, **settings)

    def raw(self, ids: list[int], speed: float) -> np.ndarray:
        """The graph's output for at most ``max_tokens`` ids, untrimmed."""
        style = style_row(self.styles, len(ids))
        return self.session.run(None, feeds(ids, style, speed))[0].reshape(-1)

    def pieces(self, ids: list[int]) -> list[list[int]]:
        """``ids`` cut into runs of at most ``max_tokens``, after a space or a mark."""
        limit = self.config.max_tokens
        out = []
        while len(ids) > limit:
            cut = max((i + 1 for i in range(limit) if ids[i] in self.breaks), default=limit)
            out.append(ids[:cut])
            ids = ids[cut:]
        return out + ([ids] if ids else [])
