"""Whisper export: checkpoints -> ONNX encoder/decoder + tokenizer assets + model.py."""
