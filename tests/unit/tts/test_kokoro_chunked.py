"""Streaming (chunked) decoding of Kokoro on its real float graph (``bench/kokoro.py``):
the graph cut at the decoder's inputs gives the whole graph's audio exactly, and the
decoder run on two overlapping pieces of the frames does not: its instance norms take
their statistics over the whole sequence (docs/benchmarks/tts.md, Korean); fed the
whole decode's statistics, the first piece is the whole's. The second test is a
tripwire: if it fails, a new graph decodes in pieces as it does whole and the chunked
first audio can be served."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.kokoro import (
    CONTEXT_FRAMES,
    FIRST_FRAMES,
    SAMPLES_PER_FRAME,
    STYLE,
    chunked_decode,
    decode,
    split_graph,
)
from export.tts import kokoro
from export.tts.runtime import korean, normalize
from export.tts.runtime.kokoro import feeds, load_styles, style_row

pytestmark = [pytest.mark.realweights, pytest.mark.slow]

TEXT = "내일 오후 세 시에 회의가 있어요."


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    import onnx
    import onnxruntime as ort

    from export.tts.dequantize import dequantize

    workdir = tmp_path_factory.mktemp("kokoro-chunked")
    source = kokoro.locate(kokoro.BUNDLED, workdir)
    whole = workdir / "kokoro.onnx"
    onnx.save(dequantize(onnx.load(str(source.graph))), str(whole))
    front, decoder = split_graph(whole, workdir)
    ids = [source.vocab[s] for s in korean.phonemes(normalize.normalize(TEXT, "ko"))
           if s in source.vocab]
    styles = load_styles(source.styles)[STYLE]

    def session(path: Path) -> ort.InferenceSession:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    return {"whole": session(whole), "front": session(front), "decoder": session(decoder),
            "feeds": feeds(ids, style_row(styles, len(ids)), 1.0), "decoder_path": decoder,
            "workdir": workdir}


def test_front_then_decoder_is_the_whole_graph(graphs: dict) -> None:
    whole = graphs["whole"].run(None, graphs["feeds"])[0].reshape(-1)
    parts = graphs["front"].run(None, graphs["feeds"])
    frames = parts[0].shape[-1]
    assert parts[1].shape[-1] == parts[3].shape[-1] == 2 * frames  # F0, phase: 2 per frame
    split = decode(graphs["decoder"], parts, graphs["feeds"]["style"], 0, frames)
    assert split.size == whole.size == SAMPLES_PER_FRAME * frames
    assert np.abs(split - whole).max() <= 1e-5


def test_two_pieces_are_not_the_whole_decode(graphs: dict) -> None:
    style = graphs["feeds"]["style"]
    parts = graphs["front"].run(None, graphs["feeds"])
    whole = decode(graphs["decoder"], parts, style, 0, parts[0].shape[-1])
    head, tail = chunked_decode(graphs["decoder"], parts, style, FIRST_FRAMES, CONTEXT_FRAMES)
    pieces = np.concatenate([head, tail])
    assert head.size == SAMPLES_PER_FRAME * FIRST_FRAMES and pieces.size == whole.size
    # the first piece even with all but the last frames as context still differs:
    # the statistics, not the receptive field
    frames = parts[0].shape[-1]
    nearly = decode(graphs["decoder"], parts, style, 0, frames - 4)[:head.size]
    assert np.abs(pieces - whole).max() > 0.1
    assert np.abs(nearly - whole[:head.size]).max() > 1e-3


def test_fed_the_whole_decodes_norm_statistics_the_first_piece_is_exact(graphs: dict) -> None:
    """Every ReduceMean of the decoder (an instance norm's mean or variance over time) as
    an output of one graph and an input of another: the second, fed the first's values
    from the whole decode, decodes the first frames with right context as the whole."""
    import copy

    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    model = onnx.load(str(graphs["decoder_path"]))
    means = [n.output[0] for n in model.graph.node if n.op_type == "ReduceMean"]
    assert len(means) == 108  # 54 instance norms
    exposing = copy.deepcopy(model)
    exposing.graph.output.extend(helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
                                 for name in means)
    kept = [n for n in model.graph.node if n.op_type != "ReduceMean"]
    del model.graph.node[:]
    model.graph.node.extend(kept)
    model.graph.input.extend(helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
                             for name in means)
    sessions = []
    for name, graph in (("exposing", exposing), ("fed", model)):
        path = graphs["workdir"] / f"decoder-{name}.onnx"
        onnx.save(graph, str(path))
        sessions.append(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]))
    exposing_session, fed = sessions
    style = graphs["feeds"]["style"]
    parts = graphs["front"].run(None, graphs["feeds"])
    names = [i.name for i in exposing_session.get_inputs()]
    out = exposing_session.run(None, dict(zip(names, [*parts, style], strict=True)))
    whole, statistics = out[0].reshape(-1), dict(zip(means, out[1:], strict=True))
    end = FIRST_FRAMES + 16
    first = fed.run(None, {**dict(zip(names, [parts[0][:, :, :end], parts[1][:, :2 * end],
                                              parts[2][:, :2 * end], parts[3][:, :, :2 * end],
                                              style], strict=True)), **statistics}
                    )[0].reshape(-1)[:SAMPLES_PER_FRAME * FIRST_FRAMES]
    assert np.abs(first - whole[:first.size]).max() <= 1e-5
