"""Kokoro's graph and voice without its weights: the dequantiser on a tiny graph
quantised as Kokoro's was (onnxruntime's quantize_dynamic), and the Kokoro voice's ids,
style rows, pieces, trim and pause on a tiny graph with Kokoro's signature."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from export.tts.dequantize import QUANTISED, dequantize, operator_counts
from export.tts.runtime import kokoro
from export.tts.runtime.voices import VoiceConfig, open_voices

RATE = 24000


def _tiny_float_graph(path: Path) -> Path:
    """Conv1d (with bias) -> MatMul -> LSTM: the three operators Kokoro has quantised."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    channels, hidden = 8, 4
    weights = {"W": rng.normal(size=(channels, channels, 3)) * 0.3,
               "b": rng.normal(size=channels), "M": rng.normal(size=(channels, channels)) * 0.3,
               "LW": rng.normal(size=(1, 4 * hidden, channels)) * 0.3,
               "LR": rng.normal(size=(1, 4 * hidden, hidden)) * 0.3}
    nodes = [helper.make_node("Conv", ["x", "W", "b"], ["c"], pads=[1, 1], kernel_shape=[3]),
             helper.make_node("Transpose", ["c"], ["t"], perm=[2, 0, 1]),
             helper.make_node("MatMul", ["t", "M"], ["m"]),
             helper.make_node("LSTM", ["m", "LW", "LR"], ["y"], hidden_size=hidden)]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, "T"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(a, np.float32), n) for n, a in weights.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_dequantised_graph_is_the_float_graph_with_rounded_weights(tmp_path: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    original = _tiny_float_graph(tmp_path / "float.onnx")
    quantize_dynamic(str(original), str(tmp_path / "int8.onnx"), weight_type=QuantType.QInt8,
                     op_types_to_quantize=["Conv", "MatMul", "LSTM"])
    quantised = onnx.load(str(tmp_path / "int8.onnx"))
    assert set(QUANTISED) <= set(operator_counts(quantised))
    model = dequantize(quantised)
    counts = operator_counts(model)
    assert not set(QUANTISED) & set(counts) and "DynamicQuantizeLinear" not in counts
    assert {"Conv", "MatMul", "LSTM"} <= set(counts)
    onnx.save(model, str(tmp_path / "dequantised.onnx"))
    x = np.random.default_rng(1).normal(size=(1, 8, 32)).astype(np.float32)
    exact, int8 = _run(original, x), _run(tmp_path / "int8.onnx", x)
    dequantised = _run(tmp_path / "dequantised.onnx", x)
    scale = float(np.abs(exact).max())
    # Only the weights' 8-bit rounding is left: closer to the float graph than int8 is
    # (whose activations are rounded too), and far closer than a wrong transpose would be.
    assert np.abs(dequantised - exact).max() < 0.02 * scale
    assert np.abs(dequantised - exact).mean() <= np.abs(int8 - exact).mean()


def test_a_pattern_it_does_not_know_is_refused(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    integer = helper.make_node("MatMulInteger", ["a", "B"], ["y"])  # no quantiser before it
    graph = helper.make_graph([integer], "odd", [helper.make_tensor_value_info(
        "a", TensorProto.UINT8, [1, 2])], [helper.make_tensor_value_info(
            "y", TensorProto.INT32, None)], [numpy_helper.from_array(
                np.ones((2, 2), np.int8), "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ValueError, match="not dynamically quantised"):
        dequantize(onnx.load_from_string(model.SerializeToString()))


# --- the voice ----------------------------------------------------------------------------

VOCAB = {s: i + 1 for i, s in enumerate(" ,.?!" + "abdeghijklmnoprstuwɡɛɯɔŋɾɕʨʥʰ")}


def _tiny_kokoro(directory: Path) -> Path:
    """A graph with Kokoro's signature: audio = a 0.1 s tone per token (the wrapping zeros
    too), scaled by the
    style's first value and lengthened by 1/speed, with 0.2 s of silence on each side."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    directory.mkdir(parents=True, exist_ok=True)
    tone = (0.5 * np.sin(np.arange(RATE // 10) * 0.3)).astype(np.float32)
    nodes = [
        helper.make_node("Shape", ["tokens"], ["shape"]),
        helper.make_node("Gather", ["shape", "one"], ["n"], axis=0),
        helper.make_node("Cast", ["n"], ["nf"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["nf", "speed"], ["count_f"]),
        helper.make_node("Cast", ["count_f"], ["count"], to=TensorProto.INT64),
        helper.make_node("Tile", ["tone", "count"], ["voiced"]),
        helper.make_node("Gather", ["style", "zero"], ["row"], axis=1),
        helper.make_node("Mul", ["voiced", "row"], ["scaled"]),
        helper.make_node("Concat", ["silence", "scaled", "silence"], ["audio"], axis=0),
    ]
    graph = helper.make_graph(nodes, "tiny-kokoro", [
        helper.make_tensor_value_info("tokens", TensorProto.INT64, [1, "n"]),
        helper.make_tensor_value_info("style", TensorProto.FLOAT, [1, 256]),
        helper.make_tensor_value_info("speed", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(tone, "tone"), numpy_helper.from_array(
            np.array(1, np.int64), "one"), numpy_helper.from_array(
            np.array(0, np.int64), "zero"), numpy_helper.from_array(
            np.zeros(RATE // 5, np.float32), "silence")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              directory / "kokoro.onnx")
    styles = np.linspace(0.5, 1.0, 510, dtype=np.float32)[:, None, None] * np.ones(
        (510, 1, 256), np.float32)
    np.savez(directory / "styles.npz", jm_tiny=styles)
    return directory


def _config(**fields: object) -> VoiceConfig:
    return VoiceConfig.from_json({
        "name": "ko-tiny", "kind": "kokoro", "model": "kokoro.onnx", "language": "ko",
        "languages": ["ko", "en"], "phoneme_type": "korean", "sample_rate": RATE,
        "style": "jm_tiny", "styles_file": "styles.npz", "pause_s": 0.2,
        "phoneme_id_map": {s: [i] for s, i in VOCAB.items()}, **fields})


def test_korean_text_to_ids_style_row_trim_and_pause(tmp_path: Path) -> None:
    voice = open_voices([_config()], _tiny_kokoro(tmp_path))["ko-tiny"]
    ids, dropped = voice.text_ids("안녕 하세요?")
    assert ids == [VOCAB[s] for s in "annjɔŋ hasejo?"] and dropped == []
    audio = voice.run(ids, noise_scale=0.667, length_scale=1.0, noise_w=0.8)
    voiced = (len(ids) + 2) * RATE // 10  # the graph sees the ids wrapped in 0 … 0
    # the graph's silences trimmed to 30 ms on each side, then the 0.2 s sentence pause
    assert abs(audio.size - (voiced + 2 * int(0.03 * RATE) + int(0.2 * RATE))) <= 2
    assert np.abs(audio[-int(0.2 * RATE):]).max() == 0
    # the style row is the one for len(ids) tokens (row n - 1), as the package picks it
    styles = voice.styles
    assert np.isclose(np.abs(audio).max(), 0.5 * styles[len(ids) - 1].reshape(-1)[0], rtol=1e-3)
    slower = voice.run(ids, noise_scale=0.0, length_scale=2.0, noise_w=0.0)  # speed 0.5
    assert slower.size > audio.size * 1.6


def test_long_input_is_synthesised_in_pieces_cut_after_a_space(tmp_path: Path) -> None:
    voice = open_voices([_config(max_tokens=10)], _tiny_kokoro(tmp_path))["ko-tiny"]
    ids = [VOCAB[s] for s in "abab abab abab abab"]
    pieces = voice.pieces(ids)
    assert [len(p) for p in pieces] == [10, 9] and pieces[0][-1] == VOCAB[" "]
    assert [i for piece in pieces for i in piece] == ids
    assert voice.run(ids, noise_scale=0, length_scale=1, noise_w=0).size > 0


def test_nothing_to_say_gives_no_ids(tmp_path: Path) -> None:
    voice = open_voices([_config()], _tiny_kokoro(tmp_path))["ko-tiny"]
    assert voice.text_ids("ㅋㅋ ... ?")[0] == []


def test_voices_share_one_session_and_an_int8_graph_stays_on_cpu(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU profile hands CUDA first: the float graph takes it, the int8 graph (its
    integer operators exist on the CPU provider only) gets the CPU."""
    from export.tts.runtime import voices as voices_module

    opened = []
    real_open = voices_module.open_session

    def recording(path, threads=0, providers=None):  # type: ignore[no-untyped-def]
        opened.append((path.name, providers))
        return real_open(path, threads, ["CPUExecutionProvider"])

    monkeypatch.setattr(voices_module, "open_session", recording)
    directory = _tiny_kokoro(tmp_path)
    gpu = [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"]
    two = open_voices([_config(), _config(name="ko-other")], directory, providers=gpu)
    assert two["ko-tiny"].session is two["ko-other"].session
    assert opened == [("kokoro.onnx", gpu)]
    open_voices([_config(graph="int8")], directory, providers=gpu)
    assert opened[-1] == ("kokoro.onnx", ["CPUExecutionProvider"])


def test_the_package_trim_is_what_the_runtime_trims() -> None:
    audio = np.concatenate([np.zeros(RATE), np.full(RATE // 2, 0.5), np.zeros(RATE)])
    trimmed = kokoro.trim(audio.astype(np.float32), RATE)
    # from 30 ms before the first loud sample to 30 ms after the last (end exclusive, as
    # the package slices it)
    assert trimmed.size == RATE // 2 + 2 * int(0.03 * RATE) - 1


def test_gpu_profile_serves_a_kokoro_version_on_gpu_instances(tmp_path: Path) -> None:
    """The decision for the GPU profile: the served Kokoro graph is the dequantised float
    one, so the tts model keeps its KIND_GPU instances (CUDA for every voice); only an
    int8 export (--kokoro-graph int8) runs on the CPU inside them (test above)."""
    import json

    from export.profiles import PROFILES, write_profile
    from export.specs import all_specs

    source = tmp_path / "model_repository"
    version = source / "tts" / "3"
    _tiny_kokoro(version)
    (version / "voices.json").write_text(json.dumps({"default": "ko-tiny", "voices": [
        json.loads(json.dumps(_config().__dict__))]}))
    target = tmp_path / "model_repository_gpu"
    write_profile(PROFILES["gpu"], all_specs(), target, source)
    config = (target / "tts" / "config.pbtxt").read_text()
    assert "KIND_GPU" in config and "count: 2" in config
    assert (target / "tts" / "3" / "kokoro.onnx").stat().st_ino == \
        (version / "kokoro.onnx").stat().st_ino  # linked, not copied
    entry = json.loads((target / "tts" / "3" / "voices.json").read_text())["voices"][0]
    assert entry["graph"] == "fp32"


def test_log_mel_distance_forgives_a_shifted_duration_not_other_speech() -> None:
    from export.tts.kokoro import log_mel_distance

    rng = np.random.default_rng(0)
    t = np.arange(RATE) / RATE
    speech = (np.sin(2 * np.pi * 220 * t * (1 + t)) * (0.5 + 0.5 * np.sin(7 * t))
              ).astype(np.float32)
    shifted = np.concatenate([speech[:RATE // 2], np.zeros(300, np.float32),
                              speech[RATE // 2:]])  # one duration a frame longer
    assert log_mel_distance("same", speech, speech, 0.3).value == 0
    assert log_mel_distance("shifted", speech, shifted, 0.3).passed
    noise = rng.normal(0, 0.3, RATE).astype(np.float32)
    assert not log_mel_distance("other", speech, noise, 0.3).passed
    longer = np.concatenate([speech, speech[:RATE // 10]])
    assert log_mel_distance("longer", speech, longer, 0.3).value == float("inf")


def test_kokoro_voice_keeps_the_voices_named_and_refuses_others(tmp_path: Path) -> None:
    """``--kokoro-voice``: the named voices in the source's order; a name the source lacks
    is refused naming the flag and the voices it has, before any export work, leaving no
    version behind."""
    from export.errors import SourceError
    from export.repository import ModelRepository
    from export.tts import kokoro as kokoro_export
    from tests.support.tts import export_voices

    entries = [{"name": "ko-kumo", "style": "jm_kumo"}, {"name": "ko-alpha", "style": "jf_alpha"}]
    assert kokoro_export.chosen_voices(entries, None) == entries
    assert kokoro_export.chosen_voices(entries, ["ko-alpha", "ko-kumo"]) == entries
    assert kokoro_export.chosen_voices(entries, ["ko-alpha"]) == [entries[1]]
    with pytest.raises(SourceError, match=r"--kokoro-voice ko-nobody: .*ko-kumo, ko-alpha"):
        kokoro_export.chosen_voices(entries, ["ko-alpha", "ko-nobody"])

    with pytest.raises(SourceError, match="--kokoro-voice ko-nobody: not a voice"):
        export_voices(tmp_path, ["kokoro-ko"], 1, kokoro_voice=["ko-nobody"])
    assert ModelRepository(tmp_path).versions("tts") == []
