"""Kokoro's float graph cut in two, with its decoder's statistics given per sentence by a
calibration per voice, so that a sentence's first audio is decoded before the rest of it.

Kokoro's decoder normalises over time: 54 instance norms (AdaIN) each take a mean and a
variance over the whole sentence (a ``ReduceMean`` each, 108 in all), so a piece decoded
alone is not the sentence's audio (docs/benchmarks/tts.md). Here each of those 108
statistics becomes an input of the decoder. What they follow most is the sentence's share
of silence (a single word is mostly the silence around it), which the front's durations
give before anything is decoded; so each statistic, per channel and per voice, is a
quadratic in that share fitted on :func:`calibration_texts` (none in the round-trip test
set), clipped to the range it was fitted on (``tts_runtime.kokoro.statistics``). With the
statistics given, the decoder is local, and a piece decoded with :func:`measure_context`
frames of its neighbours on each side gives the samples the whole decode gives, as
Piper's does (``export.tts.decoder_split``).

Calibrated statistics render the same speech a little otherwise than the sentence's own:
level within 0.8-1.1 of it, the round trip through Whisper base over the 32 test
sentences CER 0.202 against 0.198 (2026-12-06, docs/korean.md). One constant set of
statistics (the mean over long sentences) scored 0.159 on those sentences but said short
words at a tenth of their level ("네," peaked at 0.02): not used.

The *front* (tokens, style, speed -> :data:`FRONT_OUTPUTS`) holds the text encoder, the
duration, F0 and energy predictors and the sine source's phase (a cumulative sum over the
sentence, so it is computed whole and sliced); it also returns each token's frames, so
the runtime skips the leading and trailing silence it would trim anyway.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

FRONT_OUTPUTS = ["/encoder/MatMul_1_output_0",  # aligned features asr [1, 512, T]
                 "/encoder/Reshape_output_0",  # F0 [1, 2T]
                 "/encoder/Reshape_1_output_0",  # energy N [1, 2T]
                 "/decoder/decoder/generator/m_source/l_sin_gen/Mul_4_output_0"]  # [1, 9, 2T]
DURATIONS = "/encoder/Clip_output_0"
"""Each token's frames (the wrapping pads included), rounded and at least 1: [1, n + 2]."""
SAMPLES_PER_FRAME = 600  # 24 kHz, 25 ms
FRONT_FILE = "kokoro.front.onnx"
DECODER_FILE = "kokoro.decoder.onnx"
STATISTICS_FILE = "kokoro-statistics.npz"
FIRST_FRAMES = 20
"""Frames in a sentence's first piece, counted from where the voice may start (0.5 s)."""
LATER_FRAMES = 160
"""Frames in each later piece (4 s: most sentences in two pieces). In Korean conversations
(2026-12-06, 2-core EPYC, the LLM decoding beside the voice) pieces doubling from 20
frames cost more context and left more playback gaps than this (227 against 203 ms of gap
per second of reply), for the same first audio."""
EDGE_FRAMES = 8
"""Frames kept before the first token's end and after the last spoken token (the voice
starts up to 4.2 frames before the first token ends; the trim keeps 30 ms around it)."""
CONTEXTS = (2, 4, 6, 8, 10, 12, 16)
CALIBRATION_TEXTS = 20


SHORT_TEXTS = ("네,", "오늘", "죄송합니다,", "안녕하세요!", "물론이죠.", "좋아요", "그럼요,",
               "아니요.", "감사합니다.", "음,", "저는", "서울은", "맞아요!", "글쎄요,", "정말요?",
               "오늘 날씨는", "네, 알겠습니다.", "지금은", "그건", "반갑습니다!")
"""Words and short phrases that open replies (a reply's first chunk can be one word)."""


def calibration_texts() -> tuple[str, ...]:
    """Twenty everyday Korean sentences (the STT benchmark's) and :data:`SHORT_TEXTS`:
    shares of silence from 0.06 to 0.8; none is in the round-trip test set."""
    from export.korean_sentences import KOREAN

    return (*KOREAN, *SHORT_TEXTS)


def split(graph: Path, directory: Path, exposing: Path) -> list[str]:
    """Write the front and the decoder (its ``ReduceMean`` outputs turned into inputs)
    into ``directory``, and to ``exposing`` the decoder as it was with those statistics as
    extra outputs (for calibration); returns the statistics' names in the decoder's input
    order."""
    import onnx
    from onnx import TensorProto, helper
    from onnx.utils import Extractor

    extractor = Extractor(onnx.load(str(graph)))
    for name in [*FRONT_OUTPUTS, DURATIONS]:
        extractor.value_infos.setdefault(
            name, helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    front = extractor.extract_model(["tokens", "style", "speed"], [*FRONT_OUTPUTS, DURATIONS])
    decoder = extractor.extract_model([*FRONT_OUTPUTS, "style"], ["audio"])
    statistics = [n.output[0] for n in decoder.graph.node if n.op_type == "ReduceMean"]
    exposed = copy.deepcopy(decoder)
    exposed.graph.output.extend(helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
                                for name in statistics)
    onnx.save(exposed, str(exposing))
    kept = [n for n in decoder.graph.node if n.op_type != "ReduceMean"]
    del decoder.graph.node[:]
    decoder.graph.node.extend(kept)
    decoder.graph.input.extend(helper.make_tensor_value_info(
        name, TensorProto.FLOAT, [1, f"channels_{index}", 1])  # one name each: sizes differ
        for index, name in enumerate(statistics))
    for part, file in ((front, FRONT_FILE), (decoder, DECODER_FILE)):
        onnx.save(part, str(directory / file))
        onnx.checker.check_model(str(directory / file))  # what promotion checks too
    return statistics


def calibrate(front: Any, exposing: Any, styles: dict[str, np.ndarray],
              texts_ids: Sequence[list[int]], breaks: set[int]) -> dict[str, list[np.ndarray]]:
    """Per style, each statistic's model ``[5, 1, C, 1]``: a quadratic in the sentence's
    share of silence (least squares over ``texts_ids``, per channel), then the lowest and
    highest value seen (``tts_runtime.kokoro.statistics`` clips to them: a variance
    never goes below zero)."""
    from export.tts.runtime.kokoro import feeds, silence_fraction, style_row

    out: dict[str, list[np.ndarray]] = {}
    names = [i.name for i in exposing.get_inputs()]
    for style, table in styles.items():
        fractions, values = [], []
        for ids in texts_ids:
            fed = feeds(ids, style_row(table, len(ids)), 1.0)
            *parts, durations = front.run([*FRONT_OUTPUTS, DURATIONS], fed)
            fractions.append(silence_fraction(ids, durations.reshape(-1), breaks))
            values.append(exposing.run(None, dict(zip(names, [*parts, fed["style"]],
                                                      strict=True)))[1:])
        x = np.asarray(fractions, np.float64)
        design = np.stack([np.ones_like(x), x, x * x], axis=1)
        models = []
        for index in range(len(values[0])):
            seen = np.stack([v[index].reshape(-1) for v in values]).astype(np.float64)
            fit = np.linalg.lstsq(design, seen, rcond=None)[0]
            model = np.concatenate([fit, seen.min(0, keepdims=True), seen.max(0, keepdims=True)])
            models.append(model.reshape(5, *values[0][index].shape).astype(np.float32))
        out[style] = models
    return out


def save_statistics(path: Path, statistics: dict[str, list[np.ndarray]]) -> None:
    np.savez(path, **{f"{style}.{index:03d}": value for style, values in statistics.items()
                      for index, value in enumerate(values)})


def measure_context(decode: Callable[[int, int, np.ndarray | None], np.ndarray], frames: int,
                    distance: Callable[[np.ndarray, np.ndarray], float]
                    ) -> tuple[int, dict[str, float]]:
    """Frames of context a piece needs on each side, and the figures behind it.

    ``decode(start, end, phase_shift)`` decodes frames ``[start, end)`` of one sentence;
    ``distance`` compares two renderings as speech (mean |log10 mel|). The decoder turns
    its sine source into a spectrum with ``atan`` (phase), so float rounding alone moves
    its samples: the sentence with its phase shifted by 2 pi (the same sines) is ``noise``
    away from itself. The context is the smallest whose pieces (:data:`FIRST_FRAMES`,
    then doubling: more joins than the runtime makes) are no further from the whole decode
    than that: pieces are the whole within the graph's own rounding."""
    whole = decode(0, frames, None)
    noise = distance(whole, decode(0, frames, np.float32(2 * np.pi)))
    figures = {"phase_shift_log_mel": noise}
    for context in CONTEXTS:
        pieces, start, size, first = [], 0, FIRST_FRAMES, True
        while start < frames:
            end = min(frames, start + size)
            lo, hi = max(0, start - context), min(frames, end + context)
            pieces.append(decode(lo, hi, None)[(start - lo) * SAMPLES_PER_FRAME:
                                              (end - lo) * SAMPLES_PER_FRAME])
            start, size, first = end, size if first else size * 2, False
        figures[f"context_{context}_log_mel"] = distance(whole, np.concatenate(pieces))
        if figures[f"context_{context}_log_mel"] <= noise:
            return context, figures
    raise ValueError(f"Kokoro's decoder needs more than {CONTEXTS[-1]} frames of context "
                     f"({figures})")
