"""One 30-second window: ONNX encoder, decoder with KV cache, whisper's decoding rules.

A port of ``whisper.decoding.DecodingTask`` for one audio window with the greedy
decoder (temperature 0: argmax; > 0: sampling) and the default options transcribe()
uses: suppress_blank, suppress_tokens="-1", timestamps with max_initial_timestamp=1.0,
sample_len = n_text_ctx // 2. Logit filters run on float32 logits, as in whisper.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from export.providers import session_options

from .tokenizer import WhisperTokenizer

CHUNK_LENGTH = 30


@dataclass
class WindowResult:
    tokens: list[int]
    text: str
    avg_logprob: float
    no_speech_prob: float
    temperature: float
    compression_ratio: float
    ended: bool = True
    """The model ended the window itself (end of text), rather than a limit or the
    repetition guard."""


LONG_UNIT = 16
"""Units longer than this many tokens are clauses: said twice in a row, they loop."""
MAX_UNIT = 64


def loop_start(text_tokens: list[int], repeats: int) -> int | None:
    """Where a loop begins when ``text_tokens`` end in one unit said again and again:
    ``repeats`` times in a row for a unit of 3-16 tokens, twice that for one or two tokens
    (real speech repeats those more: "ha ha ha"), twice for a whole clause of up to 64
    tokens (a sentence said over and over, between timestamps). Returns the index just
    after the unit's first occurrence; None when the tokens do not loop."""
    size = len(text_tokens)
    for unit in range(1, min(MAX_UNIT, size // 2) + 1):
        times = repeats * 2 if unit <= 2 else repeats if unit <= LONG_UNIT else 2
        if unit * times > size:
            continue
        tail = text_tokens[size - unit:]
        if all(text_tokens[size - unit * (k + 1):size - unit * k] == tail
               for k in range(1, times)):
            # walk back over every repetition to the loop's first unit
            start = size - unit * times
            while start >= unit and text_tokens[start - unit:start] == tail:
                start -= unit
            return start + unit
    return None


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data))


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class WhisperOnnx:
    """The exported graphs: ``encoder.onnx`` (mel -> cross-attention K/V per layer) and
    ``decoder.onnx`` (tokens + self-attention cache -> logits + grown cache)."""

    def __init__(self, directory: str | Path, intra_op_threads: int = 0,
                 providers: list[str] | None = None, decoder_threads: int = 0) -> None:
        """``decoder_threads``: the decoder's own thread count (0: ``intra_op_threads``);
        its calls are one token per sequence, too small to spread over cores."""
        directory = Path(directory)
        self.dims: dict[str, int] = json.loads((directory / "dims.json").read_text())
        providers = providers or ["CPUExecutionProvider"]
        self.encoder = ort.InferenceSession(str(directory / "encoder.onnx"),
                                            session_options(intra_op_threads, optimize_all=True),
                                            providers=providers)
        self.decoder = ort.InferenceSession(str(directory / "decoder.onnx"),
                                            session_options(decoder_threads or intra_op_threads,
                                                            optimize_all=True),
                                            providers=providers)
        self.n_layer = self.dims["n_text_layer"]
        self.n_state = self.dims["n_text_state"]
        frames = self.encoder.get_inputs()[0].shape[2]
        self.sized = not isinstance(frames, int)
        """Whether the encoder takes windows shorter than 30 s (exports since 2026-12-01)."""
        self.aligns = "alignment_qk" in {o.name for o in self.decoder.get_outputs()}
        """Whether the decoder gives the alignment heads' scores (word timestamps; exports
        since 2026-12-02)."""

    def encode(self, mel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[B, n_mels, frames] -> cross K and V, each [n_layer, B, frames / 2, n_state]."""
        cross_k, cross_v = self.encoder.run(["cross_k", "cross_v"],
                                            {"mel": np.ascontiguousarray(mel, np.float32)})
        return cross_k, cross_v

    def empty_cache(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        shape = (self.n_layer, batch, 0, self.n_state)
        return np.zeros(shape, np.float32), np.zeros(shape, np.float32)

    def step(self, tokens: np.ndarray, cache: tuple[np.ndarray, np.ndarray],
             cross: tuple[np.ndarray, np.ndarray]
             ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Logits [B, T, n_vocab] for new ``tokens`` [B, T] after ``cache`` positions."""
        logits, self_k, self_v = self.decoder.run(
            ["logits", "new_self_k", "new_self_v"],
            {"tokens": np.asarray(tokens, np.int64), "self_k": cache[0], "self_v": cache[1],
             "cross_k": cross[0], "cross_v": cross[1]})
        return logits, (self_k, self_v)

    def align(self, tokens: list[int], cross: tuple[np.ndarray, np.ndarray]
              ) -> tuple[np.ndarray, np.ndarray]:
        """One pass over a whole sequence (batch 1): logits [T, n_vocab] and the
        alignment heads' cross-attention scores [heads, T, frames]."""
        self_k, self_v = self.empty_cache(1)
        logits, qk = self.decoder.run(
            ["logits", "alignment_qk"],
            {"tokens": np.array([tokens], np.int64), "self_k": self_k, "self_v": self_v,
             "cross_k": cross[0], "cross_v": cross[1]})
        return logits[0], qk[:, 0]


class WindowDecoder:
    """Language detection and decoding of one window, given its encoder output."""

    def __init__(self, model: WhisperOnnx, tokenizer: WhisperTokenizer) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.n_ctx = model.dims["n_text_ctx"]
        self.sample_len = self.n_ctx // 2
        precision = CHUNK_LENGTH / model.dims["n_audio_ctx"]
        self.max_initial_timestamp_index = round(1.0 / precision)
        self.suppress = np.array(tokenizer.suppress_tokens(), dtype=np.int64)
        self.blank = np.array([*tokenizer.blank_tokens, tokenizer.eot], dtype=np.int64)

    def detect_language(self, cross: tuple[np.ndarray, np.ndarray]
                        ) -> list[tuple[str, dict[str, float]]]:
        """Most likely language and the probabilities, per batch item (whisper.detect_language)."""
        batch = cross[0].shape[1]
        tokens = np.full((batch, 1), self.tokenizer.sot, np.int64)
        logits, _ = self.model.step(tokens, self.model.empty_cache(batch), cross)
        logits = logits[:, 0].astype(np.float32)
        codes = list(self.tokenizer.languages)
        ids = np.array([self.tokenizer.languages[c] for c in codes])
        masked = np.full_like(logits, -np.inf)
        masked[:, ids] = logits[:, ids]
        probs = np.exp(_log_softmax(masked))
        results = []
        for row in range(batch):
            best = codes[int(np.argmax(masked[row, ids]))]
            results.append((best, {c: float(probs[row, i]) for c, i in zip(codes, ids,
                                                                           strict=True)}))
        return results

    def initial_tokens(self, language: str | None, task: str, prompt: list[int]) -> list[int]:
        tokens = self.tokenizer.sot_sequence(language, task)
        if prompt:
            tokens = [self.tokenizer.sot_prev, *prompt[-(self.n_ctx // 2 - 1):], *tokens]
        return tokens

    def decode(self, cross: tuple[np.ndarray, np.ndarray], *, language: str | None,
               task: str = "transcribe", prompt: list[int] | None = None,
               temperature: float = 0.0, rng: np.random.Generator | None = None,
               max_repeats: int = 0) -> WindowResult:
        """Decode one window (``cross`` holds batch size 1).

        ``max_repeats`` (0: off, as openai-whisper): a window whose text ends in the same
        unit said that many times in a row (:func:`loop_start`) stops there, with the
        unit kept once. Greedy decoding can loop until the window's token limit (seen on
        Korean: a hundred repeated characters and seconds of decoding); openai-whisper
        answers that by decoding the window again at higher temperatures, each try as
        long as the first."""
        tok = self.tokenizer
        initial = self.initial_tokens(language, task, prompt or [])
        sample_begin = len(initial)
        sot_index = initial.index(tok.sot)
        tokens = list(initial)
        cache = self.model.empty_cache(1)
        pending = np.array([initial], np.int64)
        sum_logprob = 0.0
        no_speech_prob = float("nan")
        ended = False
        for i in range(self.sample_len):
            logits, cache = self.model.step(pending, cache, cross)
            if i == 0 and tok.no_speech is not None:
                probs = np.exp(_log_softmax(logits[0, sot_index]))
                no_speech_prob = float(probs[tok.no_speech])
            step_logits = logits[0, -1].astype(np.float32).copy()
            self._apply_filters(step_logits, tokens, sample_begin)
            if temperature == 0:
                next_token = int(np.argmax(step_logits))
            else:
                rng = rng or np.random.default_rng()
                gumbel = -np.log(-np.log(rng.uniform(1e-12, 1.0, step_logits.shape)))
                next_token = int(np.argmax(step_logits / temperature + gumbel))
            logprobs = _log_softmax(step_logits)
            if tokens[-1] != tok.eot:
                sum_logprob += float(logprobs[next_token])
            tokens.append(next_token)
            pending = np.array([[next_token]], np.int64)
            if next_token == tok.eot:
                ended = True
                break
            if len(tokens) > self.n_ctx:
                break
            if max_repeats and next_token < tok.eot:
                text_at = [j for j in range(sample_begin, len(tokens)) if tokens[j] < tok.eot]
                cut = loop_start([tokens[j] for j in text_at], max_repeats)
                if cut is not None:
                    del tokens[text_at[cut]:]
                    break
        sampled = tokens[sample_begin:]
        if tok.eot in sampled:
            sampled = sampled[:sampled.index(tok.eot)]
        text = tok.decode(sampled).strip()
        return WindowResult(tokens=sampled, text=text,
                            avg_logprob=sum_logprob / (len(sampled) + 1),
                            no_speech_prob=no_speech_prob, temperature=temperature,
                            compression_ratio=compression_ratio(text), ended=ended)

    def _apply_filters(self, logits: np.ndarray, tokens: list[int], sample_begin: int) -> None:
        """SuppressBlank, SuppressTokens, ApplyTimestampRules, in whisper's order."""
        tok = self.tokenizer
        ts_begin = tok.timestamp_begin
        if len(tokens) == sample_begin:
            logits[self.blank] = -np.inf
        logits[self.suppress] = -np.inf
        logits[tok.no_timestamps] = -np.inf
        seq = tokens[sample_begin:]
        last_was_timestamp = len(seq) >= 1 and seq[-1] >= ts_begin
        penultimate_was_timestamp = len(seq) < 2 or seq[-2] >= ts_begin
        if last_was_timestamp:
            if penultimate_was_timestamp:
                logits[ts_begin:] = -np.inf
            else:
                logits[:tok.eot] = -np.inf
        timestamps = [t for t in seq if t >= ts_begin]
        if timestamps:
            last = timestamps[-1] if last_was_timestamp and not penultimate_was_timestamp \
                else timestamps[-1] + 1
            logits[ts_begin:last] = -np.inf
        if len(tokens) == sample_begin:
            logits[:ts_begin] = -np.inf
            logits[ts_begin + self.max_initial_timestamp_index + 1:] = -np.inf
        logprobs = _log_softmax(logits)
        ts = logprobs[ts_begin:]
        ts_max = ts.max()
        timestamp_logprob = ts_max + np.log(np.exp(ts - ts_max).sum()) if np.isfinite(ts_max) \
            else -np.inf
        if timestamp_logprob > logprobs[:ts_begin].max():
            logits[:ts_begin] = -np.inf
