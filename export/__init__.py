"""Export tooling: checkpoints -> ONNX / TorchScript -> Triton repository versions.

Kept import-light: heavy frameworks are imported inside the per-model modules.
"""
