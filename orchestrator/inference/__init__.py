"""Inference: the embedded Triton server and the gRPC client (imported lazily)."""
