"""Triton python-backend model ``embedder``: texts -> L2-normalised vectors.

Snapshotted as ``<version>/model.py`` by ``python -m export embedder``; reads its
neighbours (embedder.onnx, tokenizer.json, embedder.json). Tensor names come from
``export.specs.embedder``, tuning from the config's ``parameters``.

One ``execute`` receives the requests the dynamic batcher grouped (each may hold several
texts): every text of every request is embedded in one pass (sorted by length, chunked),
then the rows are handed back to their requests.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This version's own copy of the export package (export/snapshot.py) comes first, so the
# version runs the code it was exported with, whatever the installed package is now.
sys.path.insert(0, str(Path(__file__).resolve().with_name("code")))

import json
import os

import triton_python_backend_utils as pb_utils

from export.embedder.runtime import OnnxEmbedder
from export.providers import onnx_providers
from export.specs.embedder import EMBEDDING, SPEC, TEXT


class BadRequest(ValueError):
    """The request's inputs are invalid (TritonError INVALID_ARG)."""


def _texts(request) -> list[str]:  # type: ignore[no-untyped-def]
    tensor = pb_utils.get_input_tensor_by_name(request, TEXT.name)
    if tensor is None:
        raise BadRequest(f"missing input {TEXT.name}")
    texts = []
    for item in tensor.as_numpy().reshape(-1):
        try:
            texts.append(item.decode("utf-8") if isinstance(item, bytes) else str(item))
        except UnicodeDecodeError:
            raise BadRequest(f"{TEXT.name} is not valid UTF-8") from None
    return texts


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = SPEC.read_parameters(config)  # typed, defaults from the spec
        here = os.path.join(args["model_repository"], args["model_version"])
        self.embedder = OnnxEmbedder(
            here, intra_op_threads=int(params["intra_op_threads"]),
            max_rows_per_run=int(params["max_rows_per_run"]),
            providers=onnx_providers(args))

    def execute(self, requests):  # type: ignore[no-untyped-def]
        responses: list = [None] * len(requests)
        owners: list[tuple[int, int, int]] = []  # (request index, first row, row count)
        texts: list[str] = []
        for i, request in enumerate(requests):
            try:
                batch = _texts(request)
            except BadRequest as exc:
                responses[i] = pb_utils.InferenceResponse(error=pb_utils.TritonError(
                    str(exc), pb_utils.TritonError.INVALID_ARG))
                continue
            owners.append((i, len(texts), len(batch)))
            texts.extend(batch)
        try:
            vectors = self.embedder.embed(texts)
        except Exception as exc:
            for i, _, _ in owners:
                responses[i] = pb_utils.InferenceResponse(error=pb_utils.TritonError(
                    f"embedding failed: {exc}", pb_utils.TritonError.INTERNAL))
            return responses
        for i, first, count in owners:
            responses[i] = pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor(EMBEDDING.name, vectors[first:first + count])])
        return responses

    def finalize(self) -> None:
        self.embedder = None
