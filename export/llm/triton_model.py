"""Triton python-backend model ``llm`` (decoupled): chat messages -> streamed text deltas.

Snapshotted as ``<version>/model.py`` by ``python -m export llm``; reads its neighbours
(model.onnx + genai_config.json from ONNX Runtime GenAI's model builder, tokenizer.json,
chat_template.jinja, generation.json).

Every request gets its own thread with its response sender, so ``execute`` returns at once
and streams interleave; at most ``max_concurrent_streams`` generate at once, later ones
wait for a slot (and can be cancelled while waiting). Who decodes:

* On a CPU (``batch_decoding``, the default), one thread runs the exported graph over
  every live stream at once (``export.llm.batched``): a new stream's prompt is prefilled
  before the others' next step, then it joins their batch. Sampling is
  ``export.llm.sampling``'s.
* On a GPU, or with ``batch_decoding`` off, each stream has its own GenAI generator (its
  KV cache, sampling and EOS handling); GenAI runs its steps without the GIL, so the
  streams' steps overlap. With ``urgent_tokens`` set, a stream's first tokens go first
  (``export.llm.priority``; off by default: no gain measured on a 2-core CPU).

Prefix reuse (``export.llm.prefix_cache``): a finished stream's cache is kept with the
tokens it holds; a later prompt sharing that prefix (the next turn of the same
conversation) appends only its new tokens. ``cached_tokens`` reports how many were reused.

The chat template is applied here, not in the orchestrator: template, tokenizer and
weights are one version's assets, so a rollback can never pair a template with the
wrong model, and every Triton client (not only the orchestrator) gets correct prompts.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This version's own copy of the export package (export/snapshot.py) comes first, so the
# version runs the code it was exported with, whatever the installed package is now.
sys.path.insert(0, str(Path(__file__).resolve().with_name("code")))

import json
import os
from dataclasses import dataclass

import numpy as np
import onnxruntime_genai as og
import triton_python_backend_utils as pb_utils
from tokenizers import Tokenizer

from export.llm.batched import END, BatchedDecoder, GraphLayout, open_session, unsupported_reason
from export.llm.genai import load_model, served_threads
from export.llm.generation import (
    TEMPLATE_FILE,
    TOKENIZER_FILE,
    GenerationAssets,
    IncrementalDetokenizer,
    SamplingConfig,
    StopMatcher,
    render_chat,
)
from export.llm.prefix_cache import PrefixCache
from export.llm.priority import FirstTokensFirst
from export.llm.sampling import Sampler
from export.specs import llm as spec
from export.streaming import StreamWorkers

ROLES = ("system", "user", "assistant")
MAX_STOP_CHARS = 64
POLL_S = 0.05
"""How often a stream waiting for its next token looks for its client's cancellation."""


@dataclass
class Job:
    prompt_ids: list[int]
    max_tokens: int
    sampling: SamplingConfig
    stops: list[str]


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = spec.SPEC.read_parameters(config)  # typed, defaults from the spec
        here = os.path.join(args["model_repository"], args["model_version"])
        self.logger = pb_utils.Logger
        self.assets = GenerationAssets.load(here)
        self.max_tokens_limit = int(params["max_tokens_limit"])
        self.default_max_tokens = int(params["default_max_tokens"])
        # KIND_GPU instances (the GPU profile) run on CUDA when GenAI has it.
        gpu = str(args.get("model_instance_kind", "CPU")).upper() == "GPU"
        if not gpu and int(params["cpu_nice"]) > 0:
            # Before the model and the stream threads exist: the threads they start
            # inherit it. On a shared CPU a reply's first audio then waits on no token.
            os.nice(min(int(params["cpu_nice"]), 19))
        threads = served_threads(int(params["intra_op_threads"]))
        batch = spec.batch_decoding(params["batch_decoding"])
        self.batcher = (self._batcher(here, threads, int(params["prefix_cache_size"]))
                        if not gpu and batch else None)
        self.model = None if self.batcher is not None else load_model(
            here, threads, int(args.get("model_instance_device_id", 0) or 0) if gpu else None)
        self.logger.log_info(f"llm version {args['model_version']}: " + (
            "one decode step for every live stream" if self.batcher is not None
            else "a GenAI generator per stream"))
        self.prefix_cache = PrefixCache(int(params["prefix_cache_size"]))
        self.tokenizer = Tokenizer.from_file(os.path.join(here, TOKENIZER_FILE))
        with open(os.path.join(here, TEMPLATE_FILE), encoding="utf-8") as fh:
            self.template = fh.read()
        self.eos = set(self.assets.eos_token_ids)
        self.streams = StreamWorkers(pb_utils, "llm", int(params["max_concurrent_streams"]))
        # LLM_URGENT_TOKENS in the server's environment overrides the config (benchmarks
        # compare the gate on and off without a new version).
        self.priority = FirstTokensFirst(int(os.environ.get("LLM_URGENT_TOKENS",
                                                            params["urgent_tokens"])))

    def _batcher(self, here: str, threads: int, pool: int) -> BatchedDecoder | None:
        session, layout = open_session(here, threads), GraphLayout.load(here)
        reason = unsupported_reason(session, layout)
        if reason is not None:
            self.logger.log_warn(f"llm: decoding each stream on its own: {reason}")
            return None
        return BatchedDecoder(session, layout, self.assets.eos_token_ids, pool)

    # --- requests ---------------------------------------------------------------------

    def execute(self, requests: list) -> None:
        self.streams.dispatch(requests, self._parse, self._generate)

    def _parse(self, request) -> Job:  # type: ignore[no-untyped-def]
        def value(tensor, default):  # type: ignore[no-untyped-def]
            return self.streams.scalar(request, tensor, default)

        messages = value(spec.MESSAGES, None)
        prompt = value(spec.PROMPT, None)
        if (messages is None) == (prompt is None):
            raise ValueError("invalid request: give exactly one of messages or prompt")
        if messages is not None:
            text = render_chat(self.template, _messages(messages),
                               bos_token=self.assets.bos_token, eos_token=self.assets.eos_token)
            prompt_ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        else:
            prompt_ids = self.tokenizer.encode(prompt).ids
        if not prompt_ids:
            raise ValueError("invalid prompt: it is empty")
        context = self.assets.context_tokens
        if len(prompt_ids) >= context:
            raise ValueError(f"invalid prompt: {len(prompt_ids)} tokens do not fit the "
                             f"model's context window of {context} tokens")
        max_tokens = int(value(spec.MAX_TOKENS, self.default_max_tokens))
        if not 1 <= max_tokens <= self.max_tokens_limit:
            raise ValueError(f"invalid max_tokens {max_tokens}: must be between 1 and "
                             f"{self.max_tokens_limit}")
        seed = value(spec.SEED, None)
        sampling = SamplingConfig(
            temperature=float(value(spec.TEMPERATURE, 0.7)),
            top_p=float(value(spec.TOP_P, 1.0)), top_k=int(value(spec.TOP_K, 0)),
            repetition_penalty=float(value(spec.REPETITION_PENALTY, 1.0)),
            seed=None if seed is None else int(seed))
        sampling.check()
        return Job(prompt_ids, min(max_tokens, context - len(prompt_ids)), sampling,
                   _stops(value(spec.STOP, None)))

    # --- generation -------------------------------------------------------------------

    def _generator(self, job: Job) -> tuple[og.Generator, int, tuple | None]:
        """A generator holding the prompt, the prompt tokens it reused, and its pool key
        (None: never pooled, a seeded sampling request)."""
        options = job.sampling.search_options(self.assets.vocab_size)
        key = tuple(sorted(options.items()))
        reusable = "random_seed" not in options
        reuse = self.prefix_cache.take(key, job.prompt_ids) if reusable else None
        if reuse is not None:
            generator, cached = reuse.generator, reuse.cached_tokens
            generator.rewind_to(cached)
        else:
            params = og.GeneratorParams(self.model)
            # no shared buffer: a pooled generator holds only the cache it has used
            params.set_search_options(max_length=self.assets.context_tokens,
                                      past_present_share_buffer=False, **options)
            generator, cached = og.Generator(self.model, params), 0
        generator.append_tokens(job.prompt_ids[cached:])
        return generator, cached, key if reusable else None

    def _generate(self, job: Job, sender, request_id: str) -> None:  # type: ignore[no-untyped-def]
        ticket = self.priority.begin()  # before the prefill: that is a first token's cost
        tokens = None
        try:
            tokens = (_BatchedTokens(self.batcher, job) if self.batcher is not None
                      else _GeneratorTokens(self, job, ticket))
            self._decode(job, sender, request_id, tokens)
        finally:
            if tokens is not None:
                tokens.close()
            self.priority.end(ticket)
            if ticket.waited_s >= 0.05:
                self.logger.log_verbose(f"llm: request {request_id!r} gave "
                                        f"{ticket.waited_s:.2f} s to newer streams' first "
                                        "tokens")

    def _decode(self, job: Job, sender, request_id: str, tokens) -> None:  # type: ignore[no-untyped-def]
        prompt_n = len(job.prompt_ids)
        detokenizer = IncrementalDetokenizer(self.tokenizer)
        stops = StopMatcher(job.stops)
        generated = 0
        finish = "length"
        tail = None  # text before a stop sequence, when one ended the stream
        while generated < job.max_tokens:
            if self.streams.cancelled(sender):
                # One line per cancellation: operators (and the tests) see how soon it stopped.
                self.logger.log_info(f"llm: request {request_id!r} cancelled after "
                                     f"{generated} tokens")
                self.streams.end(sender)  # the cache is pooled all the same: a barged-in
                return                    # reply's next turn shares its prefix
            token = tokens.next()
            if token is None:
                continue
            if token == END:
                break
            if token in self.eos:
                finish = "stop"
                break
            generated += 1
            text, stopped = stops.feed(detokenizer.push(token))
            if stopped:
                finish, tail = "stop", text
                break
            if text:
                sender.send(self._response(text, "", prompt_n, tokens.cached_tokens,
                                           generated, final=False))
        if tail is None:
            tail, stopped = stops.feed(detokenizer.flush())
            if stopped:
                finish = "stop"
            else:
                tail += stops.flush()
        sender.send(self._response(tail, finish, prompt_n, tokens.cached_tokens, generated,
                                   final=True),
                    flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)

    def _keep(self, key: tuple | None, generator: og.Generator) -> None:
        """Pool a finished or cancelled stream's generator for prefix reuse."""
        if key is not None:
            # The last sampled token was never fed back (its keys/values are not cached),
            # and GenAI's rewind_to refuses the cache's own length: what a later request can
            # rewind to is all but the last two tokens.
            self.prefix_cache.put(key, generator.get_sequence(0).tolist()[:-2], generator)

    @staticmethod
    def _response(text: str, finish: str, prompt_n: int, cached_n: int, completion_n: int,  # type: ignore[no-untyped-def]
                  final: bool):
        def tensor(t, value, dtype):  # type: ignore[no-untyped-def]
            return pb_utils.Tensor(t.name, np.array([value], dtype=dtype))

        return pb_utils.InferenceResponse(output_tensors=[
            tensor(spec.TEXT, text.encode("utf-8"), np.object_),
            tensor(spec.FINISH_REASON, finish.encode("utf-8"), np.object_),
            tensor(spec.PROMPT_TOKENS, prompt_n, np.int32),
            tensor(spec.CACHED_TOKENS, cached_n, np.int32),
            tensor(spec.COMPLETION_TOKENS, completion_n, np.int32),
            tensor(spec.FINAL, final, np.bool_),
        ])

    def finalize(self) -> None:
        self.streams.finalize()
        if self.batcher is not None:
            self.batcher.close()
        self.prefix_cache.clear()


class _BatchedTokens:
    """A stream's tokens from the batched decoder."""

    def __init__(self, batcher: BatchedDecoder, job: Job) -> None:
        self.stream = batcher.start(job.prompt_ids, job.max_tokens, Sampler(job.sampling),
                                    reuse=job.sampling.seed is None)

    @property
    def cached_tokens(self) -> int:
        return self.stream.cached_tokens

    def next(self) -> int | None:
        """The next token, END, or None while it is not there yet."""
        return self.stream.get(POLL_S)

    def close(self) -> None:
        self.stream.stop()  # the decoder pools its cache


class _GeneratorTokens:
    """A stream's tokens from its own GenAI generator."""

    def __init__(self, model: TritonPythonModel, job: Job, ticket) -> None:  # type: ignore[no-untyped-def]
        self.model, self.ticket = model, ticket
        self.generator, self.cached_tokens, self.key = model._generator(job)
        self.generated = 0

    def next(self) -> int:
        if self.generator.is_done():
            return END
        self.model.priority.step(self.ticket, self.generated)
        self.generator.generate_next_token()
        self.generated += 1
        return int(self.generator.get_next_tokens()[0])

    def close(self) -> None:
        self.model._keep(self.key, self.generator)


def _messages(raw: str) -> list[dict[str, str]]:
    try:
        messages = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"invalid messages: not JSON ({exc})") from None
    if not isinstance(messages, list) or not messages:
        raise ValueError("invalid messages: expected a non-empty JSON list")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            raise ValueError(f"invalid messages[{i}]: expected {{role, content}} strings")
        if m.get("role") not in ROLES:
            raise ValueError(f"invalid messages[{i}].role {m.get('role')!r}: use one of "
                             f"{', '.join(ROLES)}")
    return messages


def _stops(raw: str | None) -> list[str]:
    if raw is None:
        return []
    try:
        stops = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"invalid stop: not JSON ({exc})") from None
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise ValueError("invalid stop: expected a JSON list of non-empty strings")
    if len(stops) > spec.MAX_STOP_SEQUENCES or any(len(s) > MAX_STOP_CHARS for s in stops):
        raise ValueError(f"invalid stop: at most {spec.MAX_STOP_SEQUENCES} sequences of "
                         f"{MAX_STOP_CHARS} characters")
    return stops
