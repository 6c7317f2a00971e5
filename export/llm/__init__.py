"""Causal LM export: HF directory or GGUF -> ONNX decoder with KV cache + tokenizer assets."""
