"""Moonshine inference: raw audio -> encoder -> greedy (or sampled) KV-cache decoding.

numpy + onnxruntime + tokenizers only: it runs inside Triton's python stub. The decode
loop is the reference one of ``useful-moonshine-onnx`` (start token, merged decoder with a
``use_cache_branch`` switch, cross-attention cache computed on the first step), which the
export's parity check compares it with token for token.

Long recordings: when the version holds a voice activity detector (``vad.onnx``, since
2026-12-05) and the audio has a silence of ``split_silence_s`` or more, each stretch of
speech between such silences is decoded on its own (:mod:`export.stt.vad`: given the
whole recording, Moonshine can end at its first step and lose all of it). A piece longer
than ``window_s`` is cut again at the quietest 100 ms within the last ``search_s``
seconds before each limit, so a cut rarely falls inside a word.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from export.providers import session_options
from export.stt.cuts import quiet_bounds
from export.stt.vad import VAD_FILE, SileroVad, pieces

LOST_SPEECH_S = 1.0
"""A window in which the detector heard at least this much speech must give text: if
it gives none even when cut finer, the request fails (:class:`SpeechLost`) rather than
return a transcript without that speech."""


class SpeechLost(RuntimeError):
    """Speech the detector heard gave no text, however it was cut."""

SAMPLE_RATE = 16_000
CONFIG_FILE = "moonshine.json"
TOKENIZER_FILE = "tokenizer.json"
GRAPHS = ("encoder_model", "decoder_model_merged")
MIN_SECONDS = 0.1  # shorter clips are padded with silence to this length


def graph_file(directory: Path, stem: str) -> Path:
    for suffix in (".ort", ".onnx"):
        path = directory / f"{stem}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(f"{directory} has no {stem}.ort or {stem}.onnx")


@dataclass
class Config:
    decoder_start_token_id: int = 1
    eos_token_id: int = 2
    tokens_per_second: float = 6.5
    """Decoding stops at this many tokens per second of audio (plus ``extra_tokens``):
    English speech runs at about 3-4; a loop that repeats stops there."""
    extra_tokens: int = 10
    window_s: float = 30.0
    search_s: float = 5.0
    split_silence_s: float = 1.0
    """With a voice activity detector: silences this long (or longer) split the audio into
    pieces decoded one by one, each keeping up to ``pad_s`` of the silence around it."""
    pad_s: float = 0.5

    @classmethod
    def load(cls, directory: Path) -> Config:
        path = directory / CONFIG_FILE
        return cls(**json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else cls()


@dataclass
class Window:
    start: int
    end: int
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    text: str = ""
    temperature: float = 0.0
    speech_s: float | None = None
    """Seconds the voice activity detector heard as speech in the window (None: no
    detector in this version)."""


class MoonshineOnnx:
    def __init__(self, directory: str | Path, *, intra_op_threads: int = 0,
                 decoder_threads: int = 0, providers: list[Any] | None = None) -> None:
        """``decoder_threads``: the decoder's own thread count (0: ``intra_op_threads``);
        its calls are one token or one draft, too small to spread over cores."""
        import onnxruntime as ort
        from tokenizers import Tokenizer

        directory = Path(directory)
        providers = providers or ["CPUExecutionProvider"]
        self.encoder = ort.InferenceSession(str(graph_file(directory, GRAPHS[0])),
                                            session_options(intra_op_threads),
                                            providers=providers)
        self.decoder = ort.InferenceSession(str(graph_file(directory, GRAPHS[1])),
                                            session_options(decoder_threads or intra_op_threads),
                                            providers=providers)
        self.config = Config.load(directory)
        self.tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        inputs = {i.name: i for i in self.decoder.get_inputs()}
        self.past_names = [n for n in inputs if n.startswith("past_key_values.")]
        first = inputs[self.past_names[0]]
        self.heads, self.head_dim = int(first.shape[1]), int(first.shape[3])
        outputs = [o.name for o in self.decoder.get_outputs()]
        self.present_names = [n.replace("past_key_values.", "present.") for n in self.past_names]
        missing = set(self.present_names) - set(outputs)
        if missing:
            raise ValueError(f"decoder outputs lack {sorted(missing)[:3]}")
        self.has_mask = "encoder_attention_mask" in inputs
        vad = directory / VAD_FILE
        self.vad = SileroVad(vad) if vad.is_file() else None

    # --- one window ------------------------------------------------------------------

    def max_tokens(self, samples: int) -> int:
        seconds = samples / SAMPLE_RATE
        return math.ceil(seconds * self.config.tokens_per_second) + self.config.extra_tokens

    def encode(self, audio: np.ndarray) -> np.ndarray:
        return self.encoder.run(None, {"input_values": audio[None, :]})[0]

    def _step(self, input_ids: np.ndarray, hidden: np.ndarray, past: dict[str, np.ndarray],
              first: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One decoder call: logits of every input position, and the updated cache."""
        feeds: dict[str, Any] = {"input_ids": input_ids, "encoder_hidden_states": hidden,
                                 "use_cache_branch": np.array([not first]), **past}
        if self.has_mask:
            feeds["encoder_attention_mask"] = np.ones(hidden.shape[:2], np.int64)
        logits, *present = self.decoder.run(["logits", *self.present_names], feeds)
        # The cross-attention cache is computed once, on the first call.
        updated = {name: value if first or ".decoder." in name else past[name]
                   for name, value in zip(self.past_names, present, strict=True)}
        return logits[0], updated

    def decode(self, hidden: np.ndarray, max_tokens: int, *, temperature: float = 0.0,
               rng: np.random.Generator | None = None,
               draft: list[int] | None = None) -> tuple[list[int], list[float]]:
        """Tokens after the start token (EOS excluded) and the log-probability of each.

        ``draft`` (greedy only): tokens an earlier, shorter transcription of this audio
        produced. They go through the decoder in one call; the longest prefix that greedy
        decoding would have chosen itself (each draft token is the argmax after the ones
        before it) is kept, the cache is cut to it, and decoding goes on from there. The
        result is exactly the greedy result without a draft, in fewer decoder calls.
        """
        cfg = self.config
        past = {name: np.zeros((0, self.heads, 1, self.head_dim), np.float32)
                for name in self.past_names}
        tokens: list[int] = []
        logprobs: list[float] = []
        draft = list(draft or [])[:max_tokens - 1] if temperature == 0 else []
        input_ids = np.array([[cfg.decoder_start_token_id, *draft]], np.int64)
        first = True
        while len(tokens) < max_tokens:
            logits, past = self._step(input_ids, hidden, past, first)
            first = False
            scores = logits.astype(np.float64)
            log_softmax = scores - scores.max(axis=-1, keepdims=True)
            log_softmax -= np.log(np.exp(log_softmax).sum(axis=-1, keepdims=True))
            if input_ids.shape[1] > 1:  # a draft: keep what greedy agrees with
                choices = scores.argmax(axis=-1)
                accepted = 0  # greedy would have stopped at an EOS: never accept past one
                while accepted < len(draft) and \
                        choices[accepted] == draft[accepted] != cfg.eos_token_id:
                    accepted += 1
                tokens += draft[:accepted]
                logprobs += [float(log_softmax[i, draft[i]]) for i in range(accepted)]
                keep = accepted + 1  # the start token and the accepted draft
                past = {name: value[:, :, :keep] if ".decoder." in name else value
                        for name, value in past.items()}
                scores, log_softmax = scores[accepted], log_softmax[accepted]
                if len(tokens) >= max_tokens:
                    break
            else:
                scores, log_softmax = scores[-1], log_softmax[-1]
            if temperature > 0:
                generator = rng or np.random.default_rng()
                probs = np.exp(log_softmax / temperature)
                token = int(generator.choice(probs.size, p=probs / probs.sum()))
            else:
                token = int(scores.argmax())
            if token == cfg.eos_token_id:
                break
            tokens.append(token)
            logprobs.append(float(log_softmax[token]))
            input_ids = np.array([[token]], np.int64)
        return tokens, logprobs

    # --- whole recordings ------------------------------------------------------------

    def windows(self, audio: np.ndarray) -> list[Window]:
        """Where the recording is decoded: pieces between long silences (when the version
        has a detector), each cut again into windows of at most ``window_s``."""
        cfg = self.config
        if self.vad is None:
            cut, heard = [(0, audio.size)], [None]
        else:
            found = pieces(audio, self.vad.probabilities(audio),
                           split_silence_s=cfg.split_silence_s, pad_s=cfg.pad_s)
            cut, heard = found.bounds, list(found.speech_s)
        windows = []
        for (start, end), speech_s in zip(cut, heard, strict=True):
            inner = quiet_bounds(audio[start:end], int(cfg.window_s * SAMPLE_RATE),
                                 int(cfg.search_s * SAMPLE_RATE))
            windows += [Window(start + lo, start + hi,
                               speech_s=None if speech_s is None or len(inner) > 1
                               else speech_s) for lo, hi in inner]
        return windows

    def transcribe(self, audio: np.ndarray, *, temperature: float = 0.0,
                   rng: np.random.Generator | None = None,
                   draft: list[int] | None = None) -> list[Window]:
        """``draft``: see :meth:`decode`. It covers the windows in order: each window
        checks what is left of it after the tokens of the windows before."""
        audio = np.ascontiguousarray(audio, np.float32).reshape(-1)
        if audio.size < MIN_SECONDS * SAMPLE_RATE:
            audio = np.pad(audio, (0, int(MIN_SECONDS * SAMPLE_RATE) - audio.size))
        windows = self.windows(audio)
        remaining = list(draft or [])
        for window in windows:
            self._decode_window(audio, window, temperature, rng, remaining)
            done = len(window.tokens)
            remaining = remaining[done:] if remaining[:done] == window.tokens else []
            if not window.tokens and (window.speech_s or 0.0) >= LOST_SPEECH_S:
                self._recover(audio, window, temperature, rng)
        return windows

    def _decode_window(self, audio: np.ndarray, window: Window, temperature: float,
                       rng: np.random.Generator | None, draft: list[int]) -> None:
        piece = audio[window.start:window.end]
        window.tokens, window.logprobs = self.decode(
            self.encode(piece), self.max_tokens(piece.size), temperature=temperature,
            rng=rng, draft=draft or None)
        window.text = self.tokenizer.decode(window.tokens).strip()
        window.temperature = temperature

    def _recover(self, audio: np.ndarray, window: Window, temperature: float,
                 rng: np.random.Generator | None) -> None:
        """A window with speech gave no text: decode it again cut at every pause of half
        a second, and fail loudly if that gives nothing either."""
        assert self.vad is not None
        piece = audio[window.start:window.end]
        found = pieces(piece, self.vad.probabilities(piece), split_silence_s=0.5,
                       pad_s=0.25)
        parts = [Window(window.start + lo, window.start + hi) for lo, hi in found.bounds]
        for part in parts:
            self._decode_window(audio, part, temperature, rng, [])
        if not any(part.tokens for part in parts):
            raise SpeechLost(
                f"{window.speech_s:.1f} s of speech at {window.start / SAMPLE_RATE:.1f}-"
                f"{window.end / SAMPLE_RATE:.1f} s gave no text")
        window.tokens = [t for part in parts for t in part.tokens]
        window.logprobs = [lp for part in parts for lp in part.logprobs]
        window.text = " ".join(part.text for part in parts if part.text)


def segments(windows: list[Window]) -> list[dict[str, Any]]:
    """Whisper-shaped segments (one per window), as the ``stt`` spec's JSON lists them.
    Moonshine has no no-speech head: ``no_speech_prob`` is 0."""
    out = []
    for i, w in enumerate(windows):
        raw = w.text.encode("utf-8")
        out.append({"id": i, "seek": w.start // 160, "start": round(w.start / SAMPLE_RATE, 3),
                    "end": round(w.end / SAMPLE_RATE, 3), "text": w.text, "tokens": w.tokens,
                    "temperature": w.temperature,
                    "avg_logprob": float(np.mean(w.logprobs)) if w.logprobs else 0.0,
                    "compression_ratio": len(raw) / max(len(zlib.compress(raw)), 1) if raw
                    else 0.0, "no_speech_prob": 0.0})
    return out
