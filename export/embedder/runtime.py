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

from export.providers import session_options

GRAPH_FILE = "embedder.onnx"
TOKENIZER_FILE = "tokenizer.json"
ASSETS_FILE = "embedder.json"


@dataclass(frozen=True, slots=True)
class EmbedderAssets:
    """What the runtime needs besides the graph and the tokenizer."""

    dimension: int
    max_seq_length: int
    pooling: str
    """mean | cls | max | mean_sqrt_len, or dan_cnn for USE (applied inside the graph;
    recorded for people)."""
    input_names: tuple[str, ...]
    """Graph inputs in order: input_ids, attention_mask and, for BERT, token_type_ids."""
    pad_token_id: int
    pad_token: str
    empty_text_ids: tuple[int, ...] | None = None
    """Ids of a text that has no tokens besides the special ones, where the source model
    gives it others (USE's SentencePiece gives <s> <unk> </s>); None: as tokenized."""
    unk_id: int | None = None
    """Set where the source model gives one unknown token per unknown character: the
    tokenizers library gives one per run of them, so a run is split back into one each."""

    def save(self, directory: str | os.PathLike[str]) -> None:
        Path(directory, ASSETS_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n",
                                                encoding="utf-8")

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> EmbedderAssets:
        data = json.loads(Path(directory, ASSETS_FILE).read_text(encoding="utf-8"))
        data["input_names"] = tuple(data["input_names"])
        if data.get("empty_text_ids") is not None:
            data["empty_text_ids"] = tuple(data["empty_text_ids"])
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
        self._unk_piece = (self.tokenizer.id_to_token(self.assets.unk_id)
                           if self.assets.unk_id is not None else None)
        self.session = ort.InferenceSession(str(directory / GRAPH_FILE),
                                            session_options(intra_op_threads),
                                            providers=list(providers or
                                                           ["CPUExecutionProvider"]))
        self.max_rows_per_run = max(1, max_rows_per_run)

    @property
    def dimension(self) -> int:
        return self.assets.dimension

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [ids for ids, _ in self._encode(texts)]

    def _encode(self, texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """(ids, type ids) per text."""
        empty, unk = self.assets.empty_text_ids, self.assets.unk_id
        rows = []
        for encoding in self.tokenizer.encode_batch(list(texts)):
            if empty is not None and all(encoding.special_tokens_mask):
                rows.append((list(empty), [0] * len(empty)))
            elif unk is not None and unk in encoding.ids:
                # A run of unknown characters keeps its surface text as its token; the
                # <unk> piece itself (the text "<unk>") stays one token.
                ids = []
                for token, surface, (start, end) in zip(encoding.ids, encoding.tokens,
                                                        encoding.offsets, strict=True):
                    run = token == unk and surface != self._unk_piece
                    ids.extend([token] * max(1, end - start) if run else [token])
                if len(ids) > self.assets.max_seq_length:  # truncate again, keep </s>
                    ids = ids[:self.assets.max_seq_length - 1] + ids[-1:]
                rows.append((ids, [0] * len(ids)))
            else:
                rows.append((encoding.ids, encoding.type_ids))
        return rows

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One unit vector per text, in input order."""
        out = np.zeros((len(texts), self.dimension), np.float32)
        if not texts:
            return out
        encodings = self._encode(texts)
        # Similar lengths together: a chunk pads only to its own longest text.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i][0]))
        for start in range(0, len(order), self.max_rows_per_run):
            rows = order[start:start + self.max_rows_per_run]
            width = max(len(encodings[i][0]) for i in rows)
            feeds = self._feeds([encodings[i] for i in rows], width)
            out[rows] = self.session.run(None, feeds)[0]
        return out

    def _feeds(self, encodings: list[tuple[list[int], list[int]]],
               width: int) -> dict[str, np.ndarray]:
        ids = np.full((len(encodings), width), self.assets.pad_token_id, np.int64)
        mask = np.zeros((len(encodings), width), np.int64)
        types = np.zeros((len(encodings), width), np.int64)
        for row, (token_ids, type_ids) in enumerate(encodings):
            n = len(token_ids)
            ids[row, :n] = token_ids
            mask[row, :n] = 1
            types[row, :n] = type_ids
        named = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return {name: named[name] for name in self.assets.input_names}
