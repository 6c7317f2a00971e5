"""The ``embedder`` model: a batch of texts -> L2-normalised FP32 sentence vectors.

A sentence-transformers checkpoint exported to one ONNX graph (transformer, the
checkpoint's pooling, L2 normalisation) run by ONNX Runtime inside ``model.py``; the
tokenizer is an asset of the version. Vectors are unit length, so the inner product is
the cosine similarity (Milvus searches with metric ``IP``).

One request may carry several texts (batch dimension); the dynamic batcher also groups
concurrent requests, so memory writes from many sessions share one forward pass.
``dims`` of the output is ``-1``: the dimension belongs to the exported version (its
manifest records it).
"""

from __future__ import annotations

from export.specs.base import EXAMPLE_TEXT, DynamicBatching, ModelSpec, Parameter, Tensor

TEXT = Tensor("text", "BYTES", (1,), doc="UTF-8 text; longer text is truncated to the "
              "checkpoint's max_seq_length tokens", example=EXAMPLE_TEXT)
EMBEDDING = Tensor("embedding", "FP32", (-1,), doc="L2-normalised sentence vector")

MAX_BATCH_SIZE = 64

SPEC = ModelSpec(
    name="embedder",
    description="Sentence embeddings: texts -> L2-normalised FP32 vectors",
    inputs=(TEXT,),
    outputs=(EMBEDDING,),
    max_batch_size=MAX_BATCH_SIZE,
    dynamic_batching=DynamicBatching(max_queue_delay_us=2000),
    parameters=(
        Parameter("intra_op_threads", 0, "ONNX Runtime threads (0: all cores)"),
        # Texts are sorted by length and run in chunks of this many rows, so one long
        # text does not pad a whole batch to its length.
        Parameter("max_rows_per_run", 32, "rows per ONNX Runtime run"),
    ),
)
