"""Sentence-transformers checkpoints as the ``embedder`` Triton model (``python -m export
embedder --source DIR``): one ONNX graph with pooling and L2 normalisation, the
tokenizer beside it, parity against sentence-transformers in the manifest."""
