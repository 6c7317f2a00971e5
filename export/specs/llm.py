"""The ``llm`` model: chat messages + sampling parameters -> streamed text deltas.

Decoupled: one request yields one response per text delta, and the last response
carries ``final=True`` with ``finish_reason`` and the token counts. Every input except
``messages``/``prompt`` (one of the two) is optional; the model's defaults apply.
"""

from __future__ import annotations

import json
import os

from export.specs.base import ModelSpec, Parameter, Tensor

MESSAGES = Tensor("messages", "BYTES", (1,), optional=True,
                  doc='JSON list of {"role", "content"}; the chat template is applied',
                  example=json.dumps([{"role": "user",
                                       "content": "Say hello in one short sentence."}]))
PROMPT = Tensor("prompt", "BYTES", (1,), optional=True,
                doc="raw prompt text, used as is (no chat template)")
MAX_TOKENS = Tensor("max_tokens", "INT32", (1,), optional=True, example=16)
TEMPERATURE = Tensor("temperature", "FP32", (1,), optional=True, doc="0 means greedy",
                     example=0.0)
TOP_P = Tensor("top_p", "FP32", (1,), optional=True)
TOP_K = Tensor("top_k", "INT32", (1,), optional=True, doc="0 means no top-k cut")
REPETITION_PENALTY = Tensor("repetition_penalty", "FP32", (1,), optional=True)
SEED = Tensor("seed", "INT64", (1,), optional=True)
STOP = Tensor("stop", "BYTES", (1,), optional=True, doc="JSON list of stop strings")

TEXT = Tensor("text", "BYTES", (1,), doc="text delta (complete UTF-8 characters only)")
FINISH_REASON = Tensor("finish_reason", "BYTES", (1,),
                       doc='"" until the final response: stop | length')
PROMPT_TOKENS = Tensor("prompt_tokens", "INT32", (1,))
CACHED_TOKENS = Tensor("cached_tokens", "INT32", (1,),
                       doc="prompt tokens reused from an earlier stream's KV cache")
COMPLETION_TOKENS = Tensor("completion_tokens", "INT32", (1,))
FINAL = Tensor("final", "BOOL", (1,), doc="true on the last response of a request")

MAX_STOP_SEQUENCES = 4

SPEC = ModelSpec(
    name="llm",
    description="Causal LM (the builder's ONNX graph: batched decoding on a CPU, GenAI's "
                "generator on a GPU), chat template, streamed sampling, prefix reuse",
    inputs=(MESSAGES, PROMPT, MAX_TOKENS, TEMPERATURE, TOP_P, TOP_K, REPETITION_PENALTY, SEED,
            STOP),
    outputs=(TEXT, FINISH_REASON, PROMPT_TOKENS, CACHED_TOKENS, COMPLETION_TOKENS, FINAL),
    max_batch_size=0,
    decoupled=True,
    parameters=(
        Parameter("max_tokens_limit", 4096, "largest max_tokens a request may ask for"),
        Parameter("default_max_tokens", 256, "max_tokens when a request gives none"),
        Parameter("max_concurrent_streams", 16, "generations at once; later ones wait"),
        Parameter("prefix_cache_size", 8, "finished streams kept for prefix reuse (0: off)"),
        Parameter("intra_op_threads", 0, "ONNX Runtime threads (0: all cores but one, left "
                  "to speech recognition and synthesis on the same machine)"),
        Parameter("cpu_nice", 10, "CPU scheduling niceness of a CPU instance (0-19): decoding "
                  "yields the cores to speech recognition and synthesis, whose latency a "
                  "listener hears, and takes them back when those are idle"),
        Parameter("batch_decoding", True, "CPU instances: one decode step for every live "
                  "stream, a new stream's prompt prefilled before the others' next step "
                  "(export/llm/batched.py); false: a GenAI generator per stream, as a GPU "
                  "instance always has"),
        Parameter("urgent_tokens", 0, "with a generator per stream: a stream's first this "
                  "many tokens go before other streams' decode steps, which wait up to 0.5 s "
                  "at a time (export/llm/priority.py); 0, the default: streams take turns "
                  "(measured on 2 cores with one thread per stream: no earlier first tokens, "
                  "docs/benchmarks/voice.md)"),
    ),
)

BATCH_DECODING_OVERRIDE = "LLM_BATCH_DECODING"
"""Set in Triton's environment, overrides every version's ``batch_decoding`` (benchmarks
compare the two decoders on one version without a new config)."""


def batch_decoding(setting: object = None) -> bool:
    """The decoder in force: :data:`BATCH_DECODING_OVERRIDE` when set, else ``setting``
    (the config's value; the spec's default when None)."""
    parameter = SPEC.parameter("batch_decoding")
    raw = os.environ.get(BATCH_DECODING_OVERRIDE)
    if raw is None:
        raw = parameter.render() if setting is None else str(setting)
    return bool(parameter.parse(raw))
