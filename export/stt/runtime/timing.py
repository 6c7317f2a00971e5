"""Word timestamps: openai-whisper's ``whisper/timing.py`` in numpy.

One decoder pass over a window's transcript (``<|sot|>… <|notimestamps|> text <|eot|>``)
gives the cross-attention scores of the alignment heads (``alignment_qk``); softmax over
the window's frames, normalise per frame, median-filter, average the heads and find the
monotonic path through tokens x frames by dynamic time warping. A word starts where the
path first reaches its first token. Then openai-whisper's corrections: punctuation joins
its word, over-long words at sentence and segment boundaries are cut back, and segment
bounds move to their words'.

The DTW runs one anti-diagonal at a time (cells on a diagonal depend only on the two
before it), with openai-whisper's float32 costs and tie order, so the path is the same.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np

from .frontend import HOP_LENGTH, SAMPLE_RATE

TOKENS_PER_SECOND = SAMPLE_RATE / (HOP_LENGTH * 2)  # 50: one audio position per 20 ms
MEDIAN_FILTER_WIDTH = 7
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
UNICODE_SPLIT_LANGUAGES = {"zh", "ja", "th", "lo", "my", "yue"}
"""Languages written without spaces: words are split at whole characters."""


@dataclass
class WordTiming:
    word: str
    tokens: list[int]
    start: float
    end: float
    probability: float


def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def median_filter(x: np.ndarray, width: int) -> np.ndarray:
    """Median over ``width`` values along the last axis, reflect-padded (as whisper)."""
    pad = width // 2
    if x.shape[-1] <= pad:
        return x
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, width, axis=-1)
    return np.sort(windows, axis=-1)[..., pad]


def dtw(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(text indices, time indices) of the cheapest monotonic path through ``x``
    [tokens, frames]: whisper's ``dtw_cpu`` and ``backtrace``."""
    n, m = x.shape
    x = x.astype(np.float64)
    cost = np.full((n + 1, m + 1), np.inf, dtype=np.float32)
    trace = np.full((n + 1, m + 1), -1, dtype=np.int8)
    cost[0, 0] = 0
    for diagonal in range(2, n + m + 1):  # i + j
        i = np.arange(max(1, diagonal - m), min(n, diagonal - 1) + 1)
        j = diagonal - i
        c0, c1, c2 = cost[i - 1, j - 1], cost[i - 1, j], cost[i, j - 1]
        take0 = (c0 < c1) & (c0 < c2)
        take1 = ~take0 & (c1 < c0) & (c1 < c2)
        best = np.where(take0, c0, np.where(take1, c1, c2))
        cost[i, j] = (x[i - 1, j - 1] + best.astype(np.float64)).astype(np.float32)
        trace[i, j] = np.where(take0, 0, np.where(take1, 1, 2))
    trace[0, :] = 2
    trace[:, 0] = 1
    i, j = n, m
    path = []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        step = trace[i, j]
        if step == 0:
            i, j = i - 1, j - 1
        elif step == 1:
            i -= 1
        else:
            j -= 1
    result = np.array(path[::-1])
    return result[:, 0], result[:, 1]


def split_to_word_tokens(tokenizer, tokens: list[int], language: str | None  # type: ignore[no-untyped-def]
                         ) -> tuple[list[str], list[list[int]]]:
    """Whisper's ``Tokenizer.split_to_word_tokens``."""
    subwords, subword_tokens = _split_on_unicode(tokenizer, tokens)
    if language in UNICODE_SPLIT_LANGUAGES:
        return subwords, subword_tokens
    words: list[str] = []
    word_tokens: list[list[int]] = []
    for subword, pieces in zip(subwords, subword_tokens, strict=True):
        special = pieces[0] >= tokenizer.eot
        with_space = subword.startswith(" ")
        punctuation = subword.strip() in string.punctuation
        if special or with_space or punctuation or not words:
            words.append(subword)
            word_tokens.append(pieces)
        else:
            words[-1] = words[-1] + subword
            word_tokens[-1].extend(pieces)
    return words, word_tokens


def _split_on_unicode(tokenizer, tokens: list[int]) -> tuple[list[str], list[list[int]]]:  # type: ignore[no-untyped-def]
    decode = tokenizer.encoding.decode
    full = decode(tokens)
    replacement = "\ufffd"
    words, word_tokens, current = [], [], []
    offset = 0
    for token in tokens:
        current.append(token)
        decoded = decode(current)
        if replacement not in decoded or \
                full[offset + decoded.index(replacement)] == replacement:
            words.append(decoded)
            word_tokens.append(current)
            current = []
            offset += len(decoded)
    return words, word_tokens


def find_alignment(qk: np.ndarray, logits: np.ndarray, tokenizer, text_tokens: list[int],  # type: ignore[no-untyped-def]
                   sot_length: int, num_frames: int, language: str | None
                   ) -> list[WordTiming]:
    """Word timings of ``text_tokens`` from one decoder pass over
    ``[*sot_sequence, no_timestamps, *text_tokens, eot]``: ``qk`` [heads, tokens, frames]
    of the alignment heads and ``logits`` [tokens, vocab]."""
    if not text_tokens:
        return []
    sampled = logits[sot_length:, :tokenizer.eot].astype(np.float32)
    probs = _softmax(sampled)
    token_probs = probs[np.arange(len(text_tokens)), text_tokens].tolist()
    weights = _softmax(qk[:, :, :num_frames // 2].astype(np.float32))
    mean = weights.mean(axis=-2, keepdims=True)
    std = weights.std(axis=-2, keepdims=True)
    weights = median_filter((weights - mean) / std, MEDIAN_FILTER_WIDTH)
    matrix = weights.mean(axis=0)[sot_length:-1]
    text_indices, time_indices = dtw(-matrix)
    words, word_tokens = split_to_word_tokens(tokenizer, [*text_tokens, tokenizer.eot],
                                              language)
    if len(word_tokens) <= 1:
        return []
    boundaries = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    jumps = np.pad(np.diff(text_indices), (1, 0), constant_values=1).astype(bool)
    jump_times = time_indices[jumps] / TOKENS_PER_SECOND
    starts, ends = jump_times[boundaries[:-1]], jump_times[boundaries[1:]]
    return [WordTiming(word, tokens, float(start), float(end),
                       float(np.mean(token_probs[i:j])))
            for word, tokens, start, end, i, j in zip(
                words, word_tokens, starts, ends, boundaries[:-1], boundaries[1:],
                strict=False)]


def align_words(model, tokenizer, text_tokens: list[int], sot: list[int],  # type: ignore[no-untyped-def]
                cross: tuple[np.ndarray, np.ndarray], num_frames: int,
                language: str | None) -> list[WordTiming]:
    """Word timings of a window's ``text_tokens``: one decoder pass of ``model``
    (:class:`~.decoding.WhisperOnnx`) over ``[*sot, no_timestamps, *text, eot]``, then
    :func:`find_alignment`; ``sot``: the window's start-of-transcript sequence."""
    if not text_tokens:
        return []
    logits, qk = model.align([*sot, tokenizer.no_timestamps, *text_tokens, tokenizer.eot],
                             cross)
    return find_alignment(qk, logits, tokenizer, text_tokens, len(sot), num_frames, language)


def merge_punctuations(alignment: list[WordTiming], prepended: str = PREPEND_PUNCTUATIONS,
                       appended: str = APPEND_PUNCTUATIONS) -> None:
    """Opening punctuation joins the next word, closing punctuation the previous one."""
    i, j = len(alignment) - 2, len(alignment) - 1
    while i >= 0:
        previous, following = alignment[i], alignment[j]
        if previous.word.startswith(" ") and previous.word.strip() in prepended:
            following.word = previous.word + following.word
            following.tokens = previous.tokens + following.tokens
            previous.word, previous.tokens = "", []
        else:
            j = i
        i -= 1
    i, j = 0, 1
    while j < len(alignment):
        previous, following = alignment[i], alignment[j]
        if not previous.word.endswith(" ") and following.word in appended:
            previous.word = previous.word + following.word
            previous.tokens = previous.tokens + following.tokens
            following.word, following.tokens = "", []
        else:
            i = j
        j += 1


def add_word_timestamps(segments: list[dict], alignment: list[WordTiming], time_offset: float,
                        last_speech_timestamp: float, eot: int) -> None:
    """Give each segment its ``words`` (openai-whisper's ``add_word_timestamps`` after
    ``find_alignment``), moving segment bounds to them."""
    durations = np.array([t.end - t.start for t in alignment])
    durations = durations[durations.nonzero()]
    median_duration = min(0.7, float(np.median(durations)) if len(durations) else 0.0)
    max_duration = median_duration * 2
    if len(durations):  # words at sentence boundaries: at most twice the median
        sentence_end_marks = ".。!！?？"
        for i in range(1, len(alignment)):
            if alignment[i].end - alignment[i].start > max_duration:
                if alignment[i].word in sentence_end_marks:
                    alignment[i].end = alignment[i].start + max_duration
                elif alignment[i - 1].word in sentence_end_marks:
                    alignment[i].start = alignment[i].end - max_duration
    merge_punctuations(alignment)
    index = 0
    for segment in segments:
        text_tokens = [t for t in segment["tokens"] if t < eot]
        saved = 0
        words = []
        while index < len(alignment) and saved < len(text_tokens):
            timing = alignment[index]
            if timing.word:  # numpy's rounding, as whisper's float64 times get
                words.append({"word": timing.word,
                              "start": float(round(np.float64(time_offset + timing.start), 2)),
                              "end": float(round(np.float64(time_offset + timing.end), 2)),
                              "probability": timing.probability})
            saved += len(timing.tokens)
            index += 1
        if words:
            _fit_segment(segment, words, last_speech_timestamp, median_duration, max_duration)
            last_speech_timestamp = segment["end"]
        segment["words"] = words


def _fit_segment(segment: dict, words: list[dict], last_speech_timestamp: float,
                 median_duration: float, max_duration: float) -> None:
    # the first and second word after a pause: at most twice the median word duration
    if words[0]["end"] - last_speech_timestamp > median_duration * 4 and (
            words[0]["end"] - words[0]["start"] > max_duration
            or (len(words) > 1 and words[1]["end"] - words[0]["start"] > max_duration * 2)):
        if len(words) > 1 and words[1]["end"] - words[1]["start"] > max_duration:
            boundary = max(words[1]["end"] / 2, words[1]["end"] - max_duration)
            words[0]["end"] = words[1]["start"] = boundary
        words[0]["start"] = max(0, words[0]["end"] - max_duration)
    # the segment's own bounds win over a first or last word that is too long
    if segment["start"] < words[0]["end"] and segment["start"] - 0.5 > words[0]["start"]:
        words[0]["start"] = max(0, min(words[0]["end"] - median_duration, segment["start"]))
    else:
        segment["start"] = words[0]["start"]
    if segment["end"] > words[-1]["start"] and segment["end"] + 0.5 < words[-1]["end"]:
        words[-1]["end"] = max(words[-1]["start"] + median_duration, segment["end"])
    else:
        segment["end"] = words[-1]["end"]


def last_word_end(segments: list[dict]) -> float | None:
    """whisper.utils.get_end: the end of the last word, else of the last segment."""
    for segment in reversed(segments):
        for word in reversed(segment.get("words", [])):
            return word["end"]
    return segments[-1]["end"] if segments else None
