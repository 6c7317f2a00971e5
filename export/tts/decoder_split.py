"""A Piper / VITS graph cut in two before its HiFi-GAN decoder, so that a sentence's first
audio is decoded before the rest of it.

The *front* (ids, lengths, scales -> the latent frames ``z`` [1, channels, frames]) holds
the text encoder, the duration predictor, the flow and both random draws; the *decoder*
(``z`` -> audio, ``hop`` samples per frame) is deterministic and has no statistic over the
whole sequence (no normalisation layer, unlike Kokoro's), only convolutions. So a piece of
frames decoded with ``context_frames`` of its neighbours on each side (at least the
decoder's reach) gives exactly the samples the whole decode gives for it; the served
runtime (``tts_runtime.voices.Voice.stream``) decodes a short first piece, then pieces
twice as long each time. The decoder takes two thirds to three quarters of the graph's
time, so the first audio comes at about half the time of the whole graph
(docs/benchmarks/tts.md).

The cut is made at the input of the decoder's first convolution (``/dec/conv_pre`` in
Piper's export, ``/decoder/conv_pre`` in transformers' VITS), and only for graphs whose
decoder needs nothing else: a multi-speaker voice conditions its decoder on the speaker,
and is served whole.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

DECODER_START = re.compile(r"/dec(oder)?/conv_pre/Conv$")
FIRST_FRAMES = 20
"""Frames in a sentence's first piece: 0.23 s of audio at Piper's 22,050 Hz and hop 256
(the next piece, twice as long, is decoded long before that has played)."""
PROBE_FRAMES = 96
"""Frames of the random latent the decoder's reach is measured on."""


def split(model: Path, directory: Path, name: str) -> dict[str, Any] | None:
    """Write ``<name>.front.onnx`` and ``<name>.decoder.onnx`` into ``directory``; the
    voice's ``stream`` entry for voices.json, or None when the graph cannot be cut (no
    decoder found, or a decoder that needs more than the latent frames)."""
    import onnx
    from onnx.utils import Extractor

    graph = onnx.load(str(model))
    inputs = [i.name for i in graph.graph.input]
    starts = [n for n in graph.graph.node if n.op_type == "Conv" and
              DECODER_START.search(n.name)]
    if len(starts) != 1 or "sid" in inputs or len(graph.graph.output) != 1:
        return None
    latent, output = starts[0].input[0], graph.graph.output[0].name
    weights = {t.name: t for t in graph.graph.initializer}
    channels = int(weights[starts[0].input[1]].dims[1])  # conv_pre's [out, in, kernel]
    # The cut becomes an output and an input: typed and shaped (onnx.checker requires a
    # shape there; shape inference does not reach it in every export, e.g. transformers').
    kept = [v for v in graph.graph.value_info if v.name != latent]
    del graph.graph.value_info[:]
    graph.graph.value_info.extend([*kept, onnx.helper.make_tensor_value_info(
        latent, onnx.TensorProto.FLOAT, ["batch", channels, "frames"])])
    extractor = Extractor(graph)
    decoder = extractor.extract_model([latent], [output])
    if not _self_contained(decoder):
        return None
    front = extractor.extract_model(inputs, [latent])
    files = {"front": f"{name}.front.onnx", "decoder": f"{name}.decoder.onnx"}
    for part, file in ((front, files["front"]), (decoder, files["decoder"])):
        onnx.save(part, str(directory / file))
        onnx.checker.check_model(str(directory / file))  # what promotion checks too
    hop, reach = measure_decoder(directory / files["decoder"], channels)
    return {**files, "hop": hop, "context_frames": reach, "first_frames": FIRST_FRAMES}


def _self_contained(model: Any) -> bool:
    """Every tensor a node reads is the graph's input, an initializer or made by a node."""
    known = {i.name for i in model.graph.input} | {t.name for t in model.graph.initializer}
    for node in model.graph.node:
        if any(name and name not in known for name in node.input):
            return False
        known.update(node.output)
    return True


def measure_decoder(path: Path, channels: int) -> tuple[int, int]:
    """(samples per frame, frames of context a piece needs on each side). The reach is
    measured, not computed from kernel sizes: one frame of a random latent is changed
    and the samples that move show how far a frame's influence goes."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    z = np.random.default_rng(0).standard_normal((1, channels, PROBE_FRAMES)).astype(
        np.float32)
    base = session.run(None, {name: z})[0].reshape(-1)
    hop = base.size // PROBE_FRAMES
    middle = PROBE_FRAMES // 2
    moved = z.copy()
    moved[:, :, middle] += 1.0
    changed = np.flatnonzero(session.run(None, {name: moved})[0].reshape(-1) != base)
    reach = max(middle - changed[0] // hop, changed[-1] // hop - middle) + 1
    if base.size != hop * PROBE_FRAMES or reach >= middle:
        raise ValueError(f"{path.name}: a decoder of {base.size / PROBE_FRAMES} samples per "
                         f"frame reaching {reach} frames cannot be decoded in pieces")
    return int(hop), int(reach)
