"""Decoding pieces shared by the Triton model, the export's parity check and the benchmark.

Light on purpose (numpy, onnxruntime, tokenizers, jinja2; no torch): it runs inside
Triton's python backend stub.

* :class:`OnnxDecoder` — the exported decoder with its KV cache (``past.N.key`` …).
* :class:`Sampler` — repetition penalty, temperature, top-k, top-p, seeded.
* :class:`IncrementalDetokenizer` — text deltas that never split a UTF-8 character.
* :class:`StopMatcher` — stop sequences, holding back text that may start one.
* :func:`render_chat` — the checkpoint's Jinja chat template, rendered the way
  transformers renders it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DECODER_FILE = "decoder.onnx"
TOKENIZER_FILE = "tokenizer.json"
TEMPLATE_FILE = "chat_template.jinja"
GENERATION_FILE = "generation.json"


def past_name(layer: int, kind: str) -> str:
    return f"past.{layer}.{kind}"


def present_name(layer: int, kind: str) -> str:
    return f"present.{layer}.{kind}"


# --- assets ---------------------------------------------------------------------------

@dataclass(frozen=True)
class GenerationAssets:
    """``generation.json``: what the runtime needs to know about the exported model."""

    eos_token_ids: list[int]
    bos_token: str | None
    eos_token: str | None
    num_layers: int
    num_kv_heads: int
    head_dim: int
    context_tokens: int
    vocab_size: int

    @classmethod
    def load(cls, version_dir: str | Path) -> GenerationAssets:
        data = json.loads((Path(version_dir) / GENERATION_FILE).read_text(encoding="utf-8"))
        return cls(**data)

    def save(self, version_dir: str | Path) -> None:
        (Path(version_dir) / GENERATION_FILE).write_text(
            json.dumps(self.__dict__, indent=2) + "\n", encoding="utf-8")


# --- chat template --------------------------------------------------------------------

def render_chat(template: str, messages: Sequence[dict[str, Any]], *,
                bos_token: str | None = None, eos_token: str | None = None,
                add_generation_prompt: bool = True) -> str:
    """Render a Hugging Face chat template (same Jinja settings as transformers)."""
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    def tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
               separators: Any = None, sort_keys: bool = False) -> str:
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent,
                          separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(
        messages=list(messages), bos_token=bos_token or "", eos_token=eos_token or "",
        add_generation_prompt=add_generation_prompt)


# --- the ONNX decoder -----------------------------------------------------------------

class OnnxDecoder:
    """Prefill and single-token steps over the exported graph; the cache is a list."""

    def __init__(self, path: str | Path, assets: GenerationAssets, *, intra_op_threads: int = 0,
                 providers: Sequence[str] | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if intra_op_threads > 0:
            options.intra_op_num_threads = intra_op_threads
        self.session = ort.InferenceSession(str(path), options,
                                            providers=list(providers or
                                                           ["CPUExecutionProvider"]))
        self.assets = assets
        self._past = [past_name(i, k) for i in range(assets.num_layers) for k in ("key", "value")]

    def empty_cache(self) -> list[np.ndarray]:
        shape = (1, self.assets.num_kv_heads, 0, self.assets.head_dim)
        return [np.zeros(shape, np.float32) for _ in self._past]

    def forward(self, token_ids: Sequence[int], cache: list[np.ndarray]
                ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Logits of the last position (vocab,) and the grown cache."""
        past_len = cache[0].shape[2]
        n = len(token_ids)
        feed = {
            "input_ids": np.asarray([token_ids], np.int64),
            "attention_mask": np.ones((1, past_len + n), np.int64),
            "position_ids": np.arange(past_len, past_len + n, dtype=np.int64)[None],
        }
        feed.update(zip(self._past, cache, strict=True))
        logits, *present = self.session.run(None, feed)
        return logits[0, -1], present

    def greedy(self, prompt_ids: Sequence[int], new_tokens: int,
               suppress: Sequence[int] = ()) -> list[int]:
        """``new_tokens`` argmax tokens (``suppress`` ids never chosen): the parity path."""
        logits, cache = self.forward(prompt_ids, self.empty_cache())
        out: list[int] = []
        for _ in range(new_tokens):
            logits = logits.copy()
            logits[list(suppress)] = -np.inf
            token = int(np.argmax(logits))
            out.append(token)
            logits, cache = self.forward([token], cache)
        return out


# --- sampling -------------------------------------------------------------------------

@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    seed: int | None = None

    def check(self) -> None:
        """Raise ValueError naming the bad parameter."""
        if not (0.0 <= self.temperature <= 100.0) or not np.isfinite(self.temperature):
            raise ValueError(f"invalid temperature {self.temperature}: use 0 (greedy) to 100")
        if not (0.0 < self.top_p <= 1.0):
            raise ValueError(f"invalid top_p {self.top_p}: must be in (0, 1]")
        if self.top_k < 0:
            raise ValueError(f"invalid top_k {self.top_k}: must be >= 0 (0 disables it)")
        if not (0.0 < self.repetition_penalty <= 10.0):
            raise ValueError(f"invalid repetition_penalty {self.repetition_penalty}: "
                             "must be in (0, 10]")


class Sampler:
    """Chooses the next token; temperature 0 is greedy (exactly argmax of the logits)."""

    def __init__(self, config: SamplingConfig) -> None:
        self.config = config
        self.rng = np.random.default_rng(config.seed)

    def pick(self, logits: np.ndarray, seen: Sequence[int]) -> int:
        c = self.config
        if c.repetition_penalty != 1.0 and len(seen):
            logits = logits.copy()
            ids = np.unique(np.asarray(seen))
            values = logits[ids]
            # transformers' rule: shrink positive logits, push negative ones further down
            logits[ids] = np.where(values > 0, values / c.repetition_penalty,
                                   values * c.repetition_penalty)
        if c.temperature == 0.0:
            return int(np.argmax(logits))
        scores = logits.astype(np.float64) / c.temperature
        if 0 < c.top_k < scores.size:
            kth = np.partition(scores, -c.top_k)[-c.top_k]
            scores = np.where(scores < kth, -np.inf, scores)
        order = np.argsort(-scores)
        probs = np.exp(scores[order] - scores[order[0]])
        probs /= probs.sum()
        if c.top_p < 1.0:
            # keep the smallest head of the distribution whose mass reaches top_p
            keep = (np.cumsum(probs) - probs) < c.top_p
            probs = np.where(keep, probs, 0.0)
            probs /= probs.sum()
        return int(order[self.rng.choice(probs.size, p=probs)])


# --- text -----------------------------------------------------------------------------

class IncrementalDetokenizer:
    """Turns a growing token list into text deltas.

    Byte-level tokenizers split one character (Korean syllables, emoji) across several
    tokens; decoding such a prefix gives U+FFFD. A delta is released only when the decoded
    window no longer ends in U+FFFD, so no delta ever carries half a character. The window
    restarts at the last released token, which keeps each step O(1) and lets
    SentencePiece-style tokenizers keep their leading-space rules.
    """

    def __init__(self, tokenizer: Any, skip_special_tokens: bool = True) -> None:
        self.tokenizer = tokenizer
        self.skip_special = skip_special_tokens
        self.ids: list[int] = []
        self.prefix_offset = 0
        self.read_offset = 0

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=self.skip_special)

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        prefix = self._decode(self.ids[self.prefix_offset:self.read_offset])
        text = self._decode(self.ids[self.prefix_offset:])
        if len(text) > len(prefix) and not text.endswith("\ufffd"):
            self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
            return text[len(prefix):]
        return ""

    def flush(self) -> str:
        """What is still held back (at the end of generation), decoded as is."""
        prefix = self._decode(self.ids[self.prefix_offset:self.read_offset])
        text = self._decode(self.ids[self.prefix_offset:])
        self.prefix_offset = self.read_offset = len(self.ids)
        return text[len(prefix):]


class StopMatcher:
    """Finds stop sequences in streamed text without ever emitting part of one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.pending = ""

    def feed(self, delta: str) -> tuple[str, bool]:
        """(text safe to emit, whether a stop sequence was reached)."""
        self.pending += delta
        if not self.stops:
            out, self.pending = self.pending, ""
            return out, False
        hits = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if hits:
            out, self.pending = self.pending[:min(hits)], ""
            return out, True
        hold = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(self.pending)), hold, -1):
                if self.pending.endswith(stop[:size]):
                    hold = size
                    break
        cut = len(self.pending) - hold
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return out, False

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out
