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

A voice with a ``stream`` entry is served as two graphs (``export.tts.kokoro_stream``): a
front run once per sentence, and a decoder whose instance-norm statistics are inputs,
given by the voice's calibration from the sentence's share of silence; the decoder runs
on a short first piece of frames and then on longer ones, each with ``context_frames`` of
its neighbours, so the first audio comes before the rest of the sentence is decoded. The
front's token durations give the share of silence and let it skip the silence before the
first token ends and after the last spoken one, which the trim would drop anyway.
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


def spoken_span(ids: list[int], lengths: np.ndarray, breaks: set[int]) -> tuple[int, int]:
    """Frames ``[start, end)`` from the end of the leading pad to the end of the last token
    that is not a space or a mark (``lengths``: each token's frames, the pads included):
    what is outside is silence, before the trim and the sentence pause."""
    spoken = len(ids) + 1  # lengths[0] is the leading pad
    while spoken > 1 and ids[spoken - 2] in breaks:
        spoken -= 1  # a closing mark's frames are silence too
    return int(lengths[0]), int(lengths[:spoken].sum())


def silence_fraction(ids: list[int], lengths: np.ndarray, breaks: set[int]) -> float:
    """The share of a sentence's frames outside its spoken span: what the decoder's
    statistics follow most (a single word is mostly silence)."""
    start, end = spoken_span(ids, lengths, breaks)
    total = int(lengths.sum())
    return (total - (end - start)) / max(total, 1)


def statistics(models: list[np.ndarray], fraction: float) -> list[np.ndarray]:
    """Each statistic for a sentence with ``fraction`` of silence: ``models[k]`` holds a
    quadratic in the fraction and the range it was calibrated on, ``[5, 1, C, 1]``."""
    return [np.clip(m[0] + fraction * (m[1] + fraction * m[2]), m[3], m[4]).astype(np.float32)
            for m in models]


def load_styles(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


class Trimmer:
    """:func:`trim` applied to audio that arrives in pieces: each piece gives what can be
    sent now; quiet stretches are held until later audio shows whether the voice goes on."""

    def __init__(self, sample_rate: int) -> None:
        self.pad = int(TRIM_PAD_S * sample_rate)
        self.started = False
        self.held = np.zeros(0, np.float32)

    def feed(self, piece: np.ndarray) -> np.ndarray:
        audio = np.concatenate([self.held, piece])
        loud = np.flatnonzero(np.abs(audio) > TRIM_THRESHOLD)
        if loud.size == 0:
            self.held = audio
            return audio[:0]
        first = 0 if self.started else max(0, loud[0] - self.pad)
        end = loud[-1] + self.pad
        self.started, self.held = True, audio[end:]
        return audio[first:end]

    def finish(self) -> np.ndarray:
        """What :func:`trim` keeps of audio that never got loud: all of it."""
        return self.held[:0] if self.started else self.held


class KokoroVoice:
    """Same interface as :class:`.voices.Voice`: ``text_ids`` then ``run``."""

    def __init__(self, config: Any, session: Any, styles: np.ndarray,
                 decoder: Any = None, statistics: list[np.ndarray] | None = None) -> None:
        self.config = config
        self.session = session
        self.styles = styles
        self.decoder = decoder
        self.statistics_models = statistics or []
        if decoder is not None:
            names = [i.name for i in decoder.get_inputs()]
            self.decoder_inputs = names[:5]  # asr, F0, energy, phase, style
            self.statistics_names = names[5:]
            if len(self.statistics_names) != len(self.statistics_models):
                raise ValueError(f"{config.name}: the decoder takes "
                                 f"{len(self.statistics_names)} statistics, the voice has "
                                 f"{len(self.statistics_models)}")
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
        return np.concatenate(list(self.stream(ids, noise_scale=noise_scale,
                                               length_scale=length_scale, noise_w=noise_w,
                                               speaker=speaker))).astype(np.float32)

    def stream(self, ids: list[int], *, noise_scale: float = 0.0, length_scale: float = 1.0,
               noise_w: float = 0.0, speaker: int | None = None) -> Iterator[np.ndarray]:
        """The sentence's audio, trimmed, then its pause: in pieces as they are decoded
        when the voice is cut (see the module), else in one."""
        speed = 1.0 / length_scale
        rate = self.config.sample_rate
        for run in self.pieces(ids):
            pause = np.zeros(int(self.config.pause_s * rate), np.float32)
            if self.decoder is None:
                yield np.concatenate([trim(self.raw(run, speed), rate), pause])
                continue
            trimmer = Trimmer(rate)
            for piece, last in self.decoded(run, speed):
                audio = trimmer.feed(piece)
                if last:
                    audio = np.concatenate([audio, trimmer.finish(), pause])
                if audio.size:
                    yield audio.astype(np.float32)

    def decoded(self, ids: list[int], speed: float) -> Iterator[tuple[np.ndarray, bool]]:
        """The cut graph's untrimmed audio for ``ids`` in pieces (each with whether it is
        the last), from a few frames before the first token ends to a few after the last
        spoken token."""
        fed = feeds(ids, style_row(self.styles, len(ids)), speed)
        *parts, durations = self.session.run(None, fed)
        cut = self.config.stream
        hop, context = int(cut["hop"]), int(cut["context_frames"])
        edge, frames = int(cut["edge_frames"]), parts[0].shape[-1]
        lengths = durations.reshape(-1).astype(np.int64)
        start, end = spoken_span(ids, lengths, self.breaks)
        start, end = max(0, start - edge), min(frames, end + edge)
        norms = self.statistics_for(ids, lengths)
        size, later = int(cut["first_frames"]), int(cut["later_frames"])
        while start < end:
            # A short first piece (the first audio), then the rest in as few pieces as
            # :data:`later_frames` allows: each piece decodes its context again, and Kokoro
            # on a CPU shared with the LLM barely keeps up with playback.
            stop = min(end, start + size) if end - start - size > size // 2 else end
            lo, hi = max(0, start - context), min(frames, stop + context)
            audio = self.decode_frames(parts, fed["style"], norms, lo, hi)
            yield audio[(start - lo) * hop:(stop - lo) * hop], stop >= end
            start, size = stop, later

    def decode_frames(self, parts: list[np.ndarray], style: np.ndarray,
                      norms: dict[str, np.ndarray], start: int, end: int) -> np.ndarray:
        """The cut decoder's audio for frames ``[start, end)`` of the front's ``parts``
        (aligned features, F0, energy, phase: F0, energy and phase have two values a
        frame) with the statistics ``norms``."""
        asr, f0, energy, phase = parts
        return self.decoder.run(None, {
            **dict(zip(self.decoder_inputs, [asr[:, :, start:end], f0[:, 2 * start:2 * end],
                                             energy[:, 2 * start:2 * end],
                                             phase[:, :, 2 * start:2 * end], style],
                       strict=True)),
            **norms})[0].reshape(-1)

    def statistics_for(self, ids: list[int], lengths: np.ndarray) -> dict[str, np.ndarray]:
        """The decoder's statistics for one sentence, by its share of silence."""
        values = statistics(self.statistics_models,
                            silence_fraction(ids, lengths, self.breaks))
        return dict(zip(self.statistics_names, values, strict=True))

    def raw(self, ids: list[int], speed: float) -> np.ndarray:
        """The whole graph's output for at most ``max_tokens`` ids, untrimmed (a voice that
        is not cut: a cut one's session is its front)."""
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
