"""Continuous batching on a CPU: one decode step for every live stream.

ONNX Runtime GenAI decodes each generator on its own (its continuous-batching engine needs
CUDA's paged attention), so on a CPU concurrent streams took turns: 1 / 4 / 8 streams
gave 53.8 / 60.5 / 57.6 tokens/s in all. A decode step of a model this size is bound by
reading the weights and by each operator's fixed cost, not by arithmetic: one run over
four streams costs about twice a run over one (docs/benchmarks/llm.md). So one thread here
runs the exported graph, the same ``model.onnx`` GenAI reads, over every live stream:

* The builder's GroupQueryAttention reads each row's own length from the attention mask
  (``seqlens_k = sum(mask) - 1``) and writes the row's new key and value right after that
  row's past. Rows of different lengths share one right-padded cache, and each row decodes
  exactly as it would alone (the tests compare with transformers token for token).
* A new stream's prompt is prefilled on its own, before the others' next step, and then
  joins the batch: its first token is what its listener is waiting for. A long prompt
  is prefilled in pieces between the others' steps, so their replies go on meanwhile.
* A finished or stopped stream leaves its cache in a prefix pool under the tokens it holds;
  a later prompt with the same start (the next turn of a conversation) prefills only the
  rest. Unlike a GenAI generator, a cache here serves any sampling settings.

Sampling is :class:`export.llm.sampling.Sampler`'s, one random state per stream.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from export.llm.prefix_cache import PrefixCache
from export.llm.sampling import Sampler

END = -1
"""What :meth:`Stream.get` returns once the stream has no more tokens (ids are >= 0)."""

PREFILL_CHUNK = 64
"""Prompt tokens prefilled between two decode steps of the other streams (about 150 ms of
SmolLM2 int4 on one core: their replies keep well ahead of speech while a long cold
prompt is read)."""

_ANY_SETTINGS = "kv"  # the pool's key: a cache serves every sampling setting


@dataclass(eq=False)
class Stream:
    """One request's tokens, handed from the decoding thread to the request's thread."""

    prompt: list[int]
    max_tokens: int
    sampler: Sampler
    reuse: bool = True
    """Whether the prompt may start from a pooled cache. A seeded request must not: a
    quantised graph's prefill of the rest differs from a whole prefill in the last digits,
    which can change a draw, and a seed promises the same tokens."""
    cached_tokens: int = 0
    """Prompt tokens whose cache came from the prefix pool (set before the first token)."""
    _queue: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    _stopped: threading.Event = field(default_factory=threading.Event)

    def get(self, timeout_s: float) -> int | None:
        """The next token, :data:`END`, or None when none came within ``timeout_s``.
        Raises what failed the stream."""
        try:
            item = self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def stop(self) -> None:
        """The reader needs no more tokens (a stop sequence, a cancelled client): the
        stream leaves the batch before the next step."""
        self._stopped.set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()


@dataclass(eq=False)
class _Row:
    stream: Stream
    tokens: list[int]
    """Tokens whose keys and values are in the cache."""
    next_token: int = END
    """The last token drawn, fed back by the next step."""
    generated: int = 0
    done: bool = False


@dataclass(eq=False)
class _Filling:
    """A stream whose prompt is being prefilled."""

    row: _Row
    past: list[np.ndarray]
    done: int
    """Prompt tokens in ``past``."""


@dataclass(frozen=True)
class GraphLayout:
    """Names and shapes of the builder's graph, from ``genai_config.json``."""

    past_names: list[str]
    present_names: list[str]
    kv_heads: int
    head_size: int
    ids_name: str = "input_ids"
    mask_name: str = "attention_mask"
    logits_name: str = "logits"

    @classmethod
    def load(cls, version_dir: str | Path) -> GraphLayout:
        config = json.loads((Path(version_dir) / "genai_config.json").read_text("utf-8"))
        decoder = config["model"]["decoder"]
        layers = range(int(decoder["num_hidden_layers"]))
        names = decoder["inputs"]
        outputs = decoder["outputs"]
        past = [name % i for i in layers
                for name in (names["past_key_names"], names["past_value_names"])]
        present = [name % i for i in layers
                   for name in (outputs["present_key_names"], outputs["present_value_names"])]
        return cls(past, present, int(decoder["num_key_value_heads"]),
                   int(decoder["head_size"]), names["input_ids"], names["attention_mask"],
                   outputs["logits"])


def unsupported_reason(session: Any, layout: GraphLayout) -> str | None:
    """Why this graph cannot be batched here (None: it can): inputs beyond ids, mask and
    cache (position ids, images) are GenAI's to fill."""
    extra = ({i.name for i in session.get_inputs()} - {layout.ids_name, layout.mask_name}
             - set(layout.past_names))
    return f"the graph has inputs {sorted(extra)}" if extra else None


def open_session(version_dir: str | Path, intra_op_threads: int) -> Any:
    """The version's ``model.onnx`` on ONNX Runtime's CPU provider."""
    import onnxruntime as ort

    from export.providers import CPU, session_options

    return ort.InferenceSession(str(Path(version_dir) / "model.onnx"),
                                session_options(intra_op_threads), providers=[CPU])


class BatchedDecoder:
    def __init__(self, session: Any, layout: GraphLayout, eos_token_ids: Sequence[int],
                 pool_capacity: int) -> None:
        self._session = session
        self._layout = layout
        self._eos = set(eos_token_ids)
        past_type = {i.name: i.type for i in session.get_inputs()}[layout.past_names[0]]
        self._dtype = np.float16 if "float16" in past_type else np.float32
        self._pool = PrefixCache(pool_capacity)
        self._rows: list[_Row] = []
        self._cache: list[np.ndarray] = []  # per past name: [rows, kv_heads, length, head]
        self._arrivals: list[Stream] = []
        self._filling: list[_Filling] = []
        self._changed = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._loop, daemon=True, name="llm-batch")
        self._thread.start()

    def start(self, prompt: list[int], max_tokens: int, sampler: Sampler,
              reuse: bool = True) -> Stream:
        stream = Stream(list(prompt), max_tokens, sampler, reuse)
        with self._changed:
            if self._closing:
                raise RuntimeError("the model is unloading")
            self._arrivals.append(stream)
            self._changed.notify()
        return stream

    def close(self, timeout_s: float = 5.0) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify()
        self._thread.join(timeout=timeout_s)
        self._pool.clear()

    # --- the decoding thread ----------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(
                    lambda: self._closing or self._arrivals or self._rows or self._filling)
                if self._closing:
                    break
                arrivals, self._arrivals = self._arrivals, []
            try:
                self._filling.extend(self._begin(stream) for stream in arrivals)
                self._prefill()
                self._leave()
                if self._rows:
                    self._step()
                    self._leave()
            except Exception as exc:  # a fault here ends the streams in hand, none waits
                self._end_all(exc)      # forever; later ones are decoded as usual
        with self._changed:
            arrivals, self._arrivals = self._arrivals, []
        for stream in arrivals:
            stream._queue.put(END)
        self._end_all(END)

    def _end_all(self, item: int | Exception) -> None:
        """End every stream being prefilled or decoded with ``item``."""
        left = [row.stream for row in self._rows] + [f.row.stream for f in self._filling]
        self._rows, self._filling, self._cache = [], [], []
        for stream in left:
            stream._queue.put(item)

    def _begin(self, stream: Stream) -> _Filling:
        """A new stream, its cache started from what the pool holds of its prompt."""
        reuse = self._pool.take(_ANY_SETTINGS, stream.prompt) if stream.reuse else None
        if reuse is None:
            return _Filling(_Row(stream, list(stream.prompt)), self._empty_cache(), 0)
        stream.cached_tokens = reuse.cached_tokens
        return _Filling(_Row(stream, list(stream.prompt)),
                        [np.ascontiguousarray(kv[:, :, :reuse.cached_tokens])
                         for kv in reuse.generator], reuse.cached_tokens)

    def _prefill(self) -> None:
        """Prefill waiting prompts, oldest first: all of them while nothing decodes, else
        at most PREFILL_CHUNK tokens before the others' next step (a long cold prompt
        would otherwise stall every other reply for its whole prefill). A prompt that is
        done draws its first token and joins the batch, unless that token ended it."""
        budget = PREFILL_CHUNK if self._rows else None
        while self._filling and (budget is None or budget > 0):
            filling = self._filling[0]
            stream, prompt = filling.row.stream, filling.row.stream.prompt
            if stream.stopped:
                self._filling.pop(0)
                stream._queue.put(END)
                continue
            end = len(prompt) if budget is None else min(len(prompt), filling.done + budget)
            try:
                logits, filling.past = self._run(
                    np.array([prompt[filling.done:end]], np.int64),
                    np.ones((1, end), np.int64), filling.past)
            except Exception as exc:  # this stream fails; the others go on
                self._filling.pop(0)
                stream._queue.put(exc)
                continue
            if budget is not None:
                budget -= end - filling.done
            filling.done = end
            if end < len(prompt):
                continue
            self._filling.pop(0)
            self._draw(filling.row, logits[0, -1])
            if filling.row.done:
                self._pool.put(_ANY_SETTINGS, filling.row.tokens, filling.past)
            else:
                self._join(filling.row, filling.past)

    def _step(self) -> None:
        """One token for every row: each row's last token fed back, its next drawn."""
        rows = self._rows
        lengths = np.array([len(row.tokens) for row in rows])
        # a row's past is its first ``length`` positions; the new token goes right after
        width = self._cache[0].shape[2] + 1
        mask = (np.arange(width)[None, :] <= lengths[:, None]).astype(np.int64)
        ids = np.array([[row.next_token] for row in rows], np.int64)
        try:
            logits, self._cache = self._run(ids, mask, self._cache)
        except Exception as exc:  # the batch's cache is lost with it: every row fails
            for row in rows:
                row.stream._queue.put(exc)
            self._rows, self._cache = [], []
            return
        for b, row in enumerate(rows):
            row.tokens.append(row.next_token)
            self._draw(row, logits[b, -1])

    def _draw(self, row: _Row, logits: np.ndarray) -> None:
        token = row.stream.sampler.next_token(logits, row.tokens)
        row.generated += 1
        row.next_token = token
        row.stream._queue.put(token)
        if token in self._eos or row.generated >= row.stream.max_tokens:
            row.done = True
            row.stream._queue.put(END)

    def _join(self, row: _Row, present: list[np.ndarray]) -> None:
        if not self._rows:
            self._rows, self._cache = [row], present
            return
        width = max(self._cache[0].shape[2], present[0].shape[2])
        self._cache = [np.concatenate([_widen(kv, width), _widen(new, width)])
                       for kv, new in zip(self._cache, present, strict=True)]
        self._rows.append(row)

    def _leave(self) -> None:
        """Rows that ended or were stopped leave the batch; their caches go to the pool."""
        staying = [b for b, row in enumerate(self._rows)
                   if not (row.done or row.stream.stopped)]
        if len(staying) == len(self._rows):
            return
        for b, row in enumerate(self._rows):
            if b in staying:
                continue
            n = len(row.tokens)
            self._pool.put(_ANY_SETTINGS, row.tokens,
                           [np.ascontiguousarray(kv[b:b + 1, :, :n]) for kv in self._cache])
            if not row.done:
                row.stream._queue.put(END)
        self._rows = [self._rows[b] for b in staying]
        if not self._rows:
            self._cache = []
            return
        # the cache keeps only what its longest row uses
        width = max(len(row.tokens) for row in self._rows)
        self._cache = [np.ascontiguousarray(kv[staying][:, :, :width]) for kv in self._cache]

    def _run(self, ids: np.ndarray, mask: np.ndarray, past: list[np.ndarray]
             ) -> tuple[np.ndarray, list[np.ndarray]]:
        layout = self._layout
        feeds = {layout.ids_name: ids, layout.mask_name: mask,
                 **dict(zip(layout.past_names, past, strict=True))}
        outputs = self._session.run([layout.logits_name, *layout.present_names], feeds)
        return outputs[0], outputs[1:]

    def _empty_cache(self) -> list[np.ndarray]:
        shape = (1, self._layout.kv_heads, 0, self._layout.head_size)
        return [np.zeros(shape, self._dtype) for _ in self._layout.past_names]


def _widen(kv: np.ndarray, width: int) -> np.ndarray:
    """``kv`` right-padded with zeros to ``width`` positions (never read: each row's
    attention stops at its own length)."""
    if kv.shape[2] == width:
        return kv
    out = np.zeros((*kv.shape[:2], width, kv.shape[3]), kv.dtype)
    out[:, :, :kv.shape[2]] = kv
    return out
