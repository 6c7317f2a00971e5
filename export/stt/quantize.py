"""int8 Whisper versions: the exported float graphs with their matrix weights quantised
(ONNX Runtime dynamic quantisation: int8 weights, activations quantised per call).

Only ``MatMul`` is quantised: the encoder's two input convolutions would become
``ConvInteger``, which has no fast CPU kernel (Kokoro's graph measured it), and they hold a
tiny share of the weights. The decoder's vocabulary projection (51,865 x 512 in base) is
the largest single product of every decoding step, the reason int8 decodes faster.

A quantised version is not the float one: its tokens may differ. Export scores both on
the same speech (:mod:`export.stt.quality`) and refuses an int8 version whose error
rates are more than :data:`INT8_MARGIN` above the float graphs'.
"""

from __future__ import annotations

from pathlib import Path

GRAPHS = ("encoder.onnx", "decoder.onnx")
INT8_MARGIN = 0.03
"""How much higher (absolute) an int8 version's error rates may be than its float
graphs' on the same speech, short or long form, in any language scored."""


def quantize_int8(version_dir: Path) -> dict[str, int]:
    """Quantise the version's graphs in place; returns their sizes in bytes."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    sizes = {}
    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR  # its advice to pre-process, per graph
    try:
        for name in GRAPHS:
            graph = version_dir / name
            staged = version_dir / f"{name}.int8"
            quantize_dynamic(str(graph), str(staged), weight_type=QuantType.QInt8,
                             op_types_to_quantize=["MatMul"])
            staged.replace(graph)
            sizes[name] = graph.stat().st_size
    finally:
        root.level = level
    return sizes


def compare(float_scores: dict[str, dict], int8_scores: dict[str, dict]) -> list[str]:
    """Where the int8 graphs score worse than the float ones by more than the margin."""
    worse = []
    for code, figures in sorted(int8_scores.items()):
        reference = float_scores.get(code)
        if reference is None:
            continue
        for form in ("short", "long"):
            if float(figures[form]) > float(reference[form]) + INT8_MARGIN:
                worse.append(f"{code} {form}-form {figures['metric']} {figures[form]:.3f} "
                             f"int8 against {reference[form]:.3f} float")
    return worse
