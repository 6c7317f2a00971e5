"""``voicechat bench memory``: conversation memory speed.

1. Embedding throughput (texts/s) of the served ``embedder`` through Triton (gRPC,
   requests of --batch texts, --concurrency requests in flight; the dynamic batcher
   regroups them) against sentence-transformers in this process on the same weights
   (the source recorded in the served version's manifest) and the same texts.
2. Milvus search latency (p50/p95 ms) of a user-filtered top-k search at each of
   --stored sizes (default 10k and 100k turns, 100 users), on a Milvus Lite file (or
   MILVUS_URI). The stored vectors are random unit vectors inserted directly, which
   keeps the 100k case quick; search cost does not depend on where vectors came from.
   The collection is flushed (sealed) after the load and before the searches.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.options import add_output
from bench.results import write_results
from bench.stats import Summary

WORDS = ("I", "we", "you", "she", "they", "went", "saw", "liked", "bought", "cooked",
         "visited", "remembered", "called", "the", "a", "my", "our", "dog", "cat", "sister",
         "doctor", "city", "hospital", "weekend", "trip", "train", "coffee", "garden", "book",
         "movie", "concert", "mountain", "beach", "Seoul", "London", "yesterday", "tomorrow",
         "morning", "evening", "because", "and", "but", "with", "after", "before", "really",
         "quite", "new", "old", "small", "big")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--texts", type=int, default=512, help="texts embedded per path")
    parser.add_argument("--configs", default="1x1,1x16,32x1,64x4",
                        help="Triton request shapes BATCHxCONCURRENCY, comma-separated")
    parser.add_argument("--st-batch", type=int, default=32,
                        help="sentence-transformers encode() batch size")
    parser.add_argument("--stored", default="10000,100000",
                        help="collection sizes for the search latency, comma-separated")
    parser.add_argument("--users", type=int, default=100, help="users the turns belong to")
    parser.add_argument("--queries", type=int, default=200, help="searches per size")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--skip-embedding", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    add_output(parser)


def sentences(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 24))).capitalize() + "."
            for _ in range(count)]


async def _triton_throughput(url: str, texts: list[str], configs: list[tuple[int, int]]
                             ) -> tuple[list[dict], str]:
    from export.specs import embedder as spec
    from orchestrator.inference.client import TritonClient
    from orchestrator.memory.embedder import TritonEmbedder

    client = TritonClient(url, timeout_s=600)
    rows = []
    try:
        version = (await client.infer_batch(
            spec.SPEC, {spec.TEXT: np.array([["warm-up"]], dtype=object)})).model_version
        for batch, concurrency in configs:
            embedder = TritonEmbedder(client, batch_size=batch, concurrency=concurrency)
            await embedder.embed(texts[: batch * concurrency])  # warm-up
            started = time.perf_counter()
            await embedder.embed(texts)
            seconds = time.perf_counter() - started
            rows.append({"path": f"Triton, {batch} texts/request, {concurrency} in flight",
                         "seconds": seconds, "texts_per_s": len(texts) / seconds})
    finally:
        await client.close()
    return rows, version


def _embedding(args: argparse.Namespace, settings) -> dict:  # type: ignore[no-untyped-def]
    from export.repository import ModelRepository

    texts = sentences(args.texts)
    configs = [tuple(int(x) for x in c.split("x")) for c in args.configs.split(",")]
    from orchestrator.inference.embedded import triton_for
    from orchestrator.models.startup import PROMOTED

    with triton_for(settings, {"embedder"}, PROMOTED) as served:
        rows, version = asyncio.run(_triton_throughput(served.triton_url, texts, configs))
    manifest = ModelRepository(settings.model_repository).manifest("embedder", int(version))
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(manifest.source["path"], device="cpu")
    model.encode(texts[: args.st_batch], batch_size=args.st_batch)  # warm-up
    started = time.perf_counter()
    model.encode(texts, batch_size=args.st_batch, normalize_embeddings=True)
    seconds = time.perf_counter() - started
    rows.append({"path": f"sentence-transformers in process, batch {args.st_batch}",
                 "seconds": seconds, "texts_per_s": len(texts) / seconds})
    return {"texts": len(texts), "embedder_version": version,
            "source": manifest.source.get("path"), "rows": rows}


def _unit_vectors(count: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal((count, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _search(args: argparse.Namespace, settings, scratch: Path) -> list[dict]:  # type: ignore[no-untyped-def]
    from storage.memory import MemoryRow, MemoryStore

    dim = 384
    rng = np.random.default_rng(0)
    results = []
    for size in (int(s) for s in args.stored.split(",")):
        uri = settings.milvus_uri or str(scratch / f"bench_{size}.db")
        store = MemoryStore(uri, f"bench_memory_{size}", dim, timeout_s=120)
        store.open(recreate=True)
        created = datetime.now(UTC)
        started = time.perf_counter()
        for first in range(0, size, 5000):
            vectors = _unit_vectors(min(5000, size - first), dim, rng)
            store.upsert([MemoryRow(turn_id=n + 1, user_id=f"user{n % args.users}",
                                    session_id=f"s{n // 20}", role="user",
                                    text=f"synthetic turn {n}", created_at=created,
                                    embedding=v)
                          for n, v in enumerate(vectors, start=first)])
        insert_s = time.perf_counter() - started
        store.flush()  # seal: a bulk load is searched after the flush (as after reindex)
        queries = _unit_vectors(args.queries, dim, rng)
        for q in queries[:5]:  # warm-up (loads segments)
            store.search("user0", q, top_k=args.top_k, min_score=-1.0)
        latencies = []
        for i, q in enumerate(queries):
            t = time.perf_counter()
            hits = store.search(f"user{i % args.users}", q, top_k=args.top_k, min_score=-1.0)
            latencies.append((time.perf_counter() - t) * 1000)
            assert len(hits) == min(args.top_k, size // args.users)
        store.close()
        summary = Summary.of(latencies)
        results.append({"stored": size, "users": args.users, "top_k": args.top_k,
                        "insert_rows_per_s": size / insert_s, "search_ms": summary.to_json()})
    return results


def run(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    report: dict = {}
    if not args.skip_embedding:
        report["embedding"] = _embedding(args, settings)
    if not args.skip_search:
        with tempfile.TemporaryDirectory() as tmp:
            report["search"] = _search(args, settings, Path(tmp))
    import os

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores")
    if "embedding" in report:
        e = report["embedding"]
        print(f"\nembedding {e['texts']} texts (embedder version {e['embedder_version']}, "
              f"{e['source']})")
        print("| path | seconds | texts/s |\n| --- | --- | --- |")
        for row in e["rows"]:
            print(f"| {row['path']} | {row['seconds']:.2f} | {row['texts_per_s']:.0f} |")
    if "search" in report:
        print("\n| stored turns | users | top-k | insert rows/s | search p50 ms | p95 ms |")
        print("| --- | --- | --- | --- | --- | --- |")
        for row in report["search"]:
            s = row["search_ms"]
            print(f"| {row['stored']:,} | {row['users']} | {row['top_k']} | "
                  f"{row['insert_rows_per_s']:,.0f} | {s['p50']:.1f} | {s['p95']:.1f} |")
    path = write_results(args.out, "memory", vars(args), report)
    print(f"\nresults: {path}")
    return 0
