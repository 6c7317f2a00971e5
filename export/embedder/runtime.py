"""Run an exported embedder version: tokenizer.json + embedder.onnx -> unit vectors.

Shared by the Triton model (``triton_model.py``), the export's parity check and the
benchmark, so all three tokenize and batch the same way. Imports stay light (numpy,
tokenizers, onnxruntime): this runs inside Triton's python backend.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

GRAPH_FILE = "embedder.onnx"
TOKENIZER_FILE = "tokenizer.json"
ASSETS_FILE = "embedder.json"


@dataclass(frozen=True, slots=True)
class EmbedderAssets:
    """What the runtime needs besides the graph and the tokenizer."""

    dimension: int
    max_seq_length: int
    pooling: str
    """mean | cls | max | mean_sqrt_len (applied inside the graph; recorded for people)."""
    input_names: tuple[str, ...]
    """Graph inputs in order: input_ids, attention_mask and, for BERT, token_type_ids."""
    pad_token_id: int
    pad_token: str

    def save(self, directory: str | os.PathLike[str]) -> None:
        Path(directory, ASSETS_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n",
                                                encoding="utf-8")

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> EmbedderAssets:
        data = json.loads(Path(directory, ASSETS_FILE).read_text(encoding="utf-8"))
        data["input_names"] = tuple(data["input_names"])
        return cls(**data)


class OnnxEmbedder:
    """Texts -> (N, dimension) float32 unit vectors with ONNX Runtime."""

    def __init__(self, directory: str | os.PathLike[str], *, intra_op_threads: int = 0,
                 max_rows_per_run: int = 32, providers: Sequence | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        directory = Path(directory)
        self.assets = EmbedderAssets.load(directory)
        self.tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        self.tokenizer.no_padding()  # padding is per chunk, below
        self.tokenizer.enable_truncation(self.assets.max_seq_length)
        options = ort.SessionOptions()
        # No arena: it keeps the peak of the largest input ever seen (GBs after one long
        # request); freed memory goes back to the system instead.
        options.enable_cpu_mem_arena = False
        if intra_op_threads > 0:
            options.intra_op_num_threads = intra_op_threads
        self.session = ort.InferenceSession(str(directory / GRAPH_FILE), options,
                                            providers=list(providers or
                                                           ["CPUExecutionProvider"]))
        self.max_rows_per_run = max(1, max_rows_per_run)

    @property
    def dimension(self) -> int:
        return self.assets.dimension

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts))]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One unit vector per text, in input order."""
        out = np.zeros((len(texts), self.dimension), np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(list(texts))
        # Similar lengths together: a chunk pads only to its own longest text.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self.max_rows_per_run):
            rows = order[start:start + self.max_rows_per_run]
            width = max(len(encodings[i].ids) for i in rows)
            feeds = self._feeds([encodings[i] for i in rows], width)
            out[rows] = self.session.run(None, feeds)[0]
        return out

    def _feeds(self, encodings: list, width: int) -> dict[str, np.ndarray]:
        ids = np.full((len(encodings), width), self.assets.pad_token_id, np.int64)
        mask = np.zeros((len(encodings), width), np.int64)
        types = np.zeros((len(encodings), width), np.int64)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[row, :n] = encoding.ids
            mask[row, :n] = 1
            types[row, :n] = encoding.type_ids
        named = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return {name: named[name] for name in self.assets.input_names}
