"""What runs a Kokoro voice's decoder (export/tts/runtime/engines.py): the choice, and
OpenVINO behind the session interface the voice calls, checked against ONNX Runtime on a
small graph of the decoder's kind (convolutions, a transposed convolution, an activation)
with dynamic length."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from export.tts.runtime import engines


@pytest.mark.parametrize(("engine", "gpu", "amx", "openvino", "expected"), [
    ("auto", False, True, True, "openvino"),
    ("auto", False, False, True, "onnxruntime"),  # no AMX: float32 either way
    ("auto", False, True, False, "onnxruntime"),  # not installed
    ("auto", True, True, True, "onnxruntime"),  # a GPU instance: CUDA
    ("openvino", False, False, True, "openvino"),
    ("openvino", True, True, True, "onnxruntime"),
    ("onnxruntime", False, True, True, "onnxruntime"),
])
def test_the_engine_chosen(engine, gpu, amx, openvino, expected) -> None:  # type: ignore[no-untyped-def]
    assert engines.resolve(engine, gpu=gpu, amx=amx, openvino=openvino) == expected


def test_unknown_or_missing_engines_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"kokoro_engine 'tensorrt'.*auto, onnxruntime, openvino"):
        engines.resolve("tensorrt", gpu=False)
    with pytest.raises(ValueError, match="pip install openvino"):
        engines.resolve("openvino", gpu=False, openvino=False)


def test_amx_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f amx_tile amx_bf16 amx_int8\n")
    assert engines.cpu_has_amx(info)
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n")
    assert not engines.cpu_has_amx(info)  # bfloat16 vector instructions are not AMX
    assert not engines.cpu_has_amx(tmp_path / "missing")


@pytest.fixture(scope="module")
def small_decoder(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = {"w1": rng.normal(0, 0.3, (16, 8, 7)), "w2": rng.normal(0, 0.3, (16, 4, 10))}
    nodes = [helper.make_node("Conv", ["features", "w1"], ["h"], pads=[3, 3]),
             helper.make_node("LeakyRelu", ["h"], ["a"], alpha=0.1),
             helper.make_node("ConvTranspose", ["a", "w2"], ["up"], strides=[5],
                              pads=[3, 2]),
             helper.make_node("Sin", ["up"], ["audio"])]
    graph = helper.make_graph(
        nodes, "small", [helper.make_tensor_value_info("features", TensorProto.FLOAT,
                                                       [1, 8, "frames"])],
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w.astype(np.float32), name) for name, w in weights.items()])
    path = tmp_path_factory.mktemp("engines") / "decoder.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_openvino_gives_onnxruntimes_audio_on_any_length(small_decoder: Path) -> None:
    pytest.importorskip("openvino", reason="openvino is in the cpu extra (pyproject.toml)")
    import onnxruntime as ort

    reference = ort.InferenceSession(str(small_decoder), providers=["CPUExecutionProvider"])
    session = engines.OpenVinoSession(small_decoder, threads=1)
    assert [i.name for i in session.get_inputs()] == ["features"]
    assert session.precision in ("f32", "bf16")  # bf16 where the CPU has AMX
    tolerance = 0.05 if session.precision == "bf16" else 1e-4
    for frames in (5, 36, 17):  # a new length each call: the graph is dynamic
        features = np.random.default_rng(frames).normal(size=(1, 8, frames)).astype(np.float32)
        expected = reference.run(None, {"features": features})[0]
        got = session.run(None, {"features": features})[0]
        assert got.shape == expected.shape == (1, 4, frames * 5)
        assert np.abs(got - expected).max() <= tolerance


def test_calls_from_several_threads_each_get_their_own_audio(small_decoder: Path) -> None:
    pytest.importorskip("openvino", reason="openvino is in the cpu extra (pyproject.toml)")
    session = engines.OpenVinoSession(small_decoder, threads=1)
    inputs = [np.full((1, 8, 10 + k), 0.1 * k, np.float32) for k in range(6)]
    alone = [session.run(None, {"features": x})[0] for x in inputs]
    results: dict[int, np.ndarray] = {}

    def decode(k: int) -> None:
        for _ in range(5):
            results[k] = session.run(None, {"features": inputs[k]})[0]

    threads = [threading.Thread(target=decode, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, audio in results.items():
        np.testing.assert_array_equal(audio, alone[k])  # no request's buffer shared
