"""Generation pieces shared by the Triton model, the export and the benchmark.

Light on purpose (numpy, tokenizers, jinja2; no torch): it runs inside Triton's python
backend stub. The decoding itself is ONNX Runtime GenAI's (``export.llm.triton_model``).

* :class:`SamplingConfig` — checked sampling parameters -> GenAI search options.
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

TOKENIZER_FILE = "tokenizer.json"
TEMPLATE_FILE = "chat_template.jinja"
GENERATION_FILE = "generation.json"


# --- assets ---------------------------------------------------------------------------

@dataclass(frozen=True)
class GenerationAssets:
    """``generation.json``: what the runtime needs beyond ``genai_config.json``."""

    eos_token_ids: list[int]
    bos_token: str | None
    eos_token: str | None
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
                add_generation_prompt: bool = True,
                tools: Sequence[dict[str, Any]] | None = None) -> str:
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
        add_generation_prompt=add_generation_prompt,
        tools=list(tools) if tools is not None else None)


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
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise ValueError(f"invalid seed {self.seed}: must be between 0 and 2**63 - 1")

    def search_options(self, vocab_size: int) -> dict[str, Any]:
        """ONNX Runtime GenAI search options (temperature 0: greedy, exactly argmax)."""
        options: dict[str, Any] = {"repetition_penalty": self.repetition_penalty}
        if self.temperature == 0.0:
            return {**options, "do_sample": False}
        # GenAI's top_k defaults to 50; 0 here means no cut, i.e. the whole vocabulary, and
        # so does any k past it (GenAI refuses k > vocabulary size)
        options.update(do_sample=True, temperature=self.temperature, top_p=self.top_p,
                       top_k=min(self.top_k or vocab_size, vocab_size))
        if self.seed is not None:
            options["random_seed"] = self.seed % 2**31  # GenAI takes a 32-bit seed
        return options


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
        """What is still held back at the end of generation. A reply cut (by max_tokens or
        a cancellation) inside a multi-byte character drops that partial character rather
        than ending in U+FFFD."""
        prefix = self._decode(self.ids[self.prefix_offset:self.read_offset])
        text = self._decode(self.ids[self.prefix_offset:])
        self.prefix_offset = self.read_offset = len(self.ids)
        return text[len(prefix):].rstrip("\ufffd")


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
