"""The model contract lives in the spec and the registry: typed parameters, the final flag
of decoupled models, example inputs, roles, and the code a version snapshots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from export.roles import ROLES, enabled_roles
from export.snapshot import closure, snapshot
from export.specs import MODEL_NAMES, all_specs, get_spec
from export.specs.base import ModelSpec, Parameter, Tensor

EXPORT = Path(__file__).resolve().parents[2] / "export"


def test_parameters_are_typed_and_undeclared_ones_are_refused() -> None:
    spec = get_spec("stt")
    values = spec.read_parameters({"parameters": {
        "no_speech_threshold": {"string_value": "0.5"},
        "condition_on_previous_text": {"string_value": "false"}}})
    assert values["no_speech_threshold"] == 0.5 and values["condition_on_previous_text"] is False
    assert values["max_audio_seconds"] == 1800.0  # the default, from the spec only
    # A key this (older) version does not know is left out, so it still loads...
    assert "added_later" not in spec.read_parameters({"parameters": {"added_later":
                                                                    {"string_value": "1"}}})
    # ...while a config cannot be generated with an undeclared key.
    with pytest.raises(KeyError, match="no parameter 'compression_ratio_threshold'"):
        spec.config_json(parameters={"compression_ratio_threshold": "2.4"})
    with pytest.raises(ValueError, match="max_tokens_limit: 'lots' is not a int"):
        get_spec("llm").read_parameters({"parameters": {"max_tokens_limit":
                                                        {"string_value": "lots"}}})
    assert Parameter("x", True).render() == "true"


def test_every_parameter_a_model_reads_is_declared() -> None:
    """model.py reads its settings as params["name"] from read_parameters: each name used
    there must be a declared parameter (and each declared one used)."""
    import re

    for name, spec in all_specs().items():
        code = (EXPORT / name / "triton_model.py").read_text()
        used = set(re.findall(r'params\["([a-z_]+)"\]', code))
        assert used == {p.name for p in spec.parameters}, name


def test_a_decoupled_spec_must_declare_its_final_flag() -> None:
    with pytest.raises(ValueError, match="needs a BOOL output 'final'"):
        ModelSpec("x", "no final", inputs=(Tensor("a", "BYTES", (1,)),),
                  outputs=(Tensor("b", "BYTES", (1,)),), decoupled=True)
    assert get_spec("llm").final.dtype == get_spec("tts").final.dtype == "BOOL"


def test_example_inputs_come_from_the_spec() -> None:
    llm = get_spec("llm").example_inputs()
    names = {t.name: v for t, v in llm.items()}
    assert set(names) == {"messages", "max_tokens", "temperature"}
    assert json.loads(names["messages"][0])[0]["role"] == "user"
    stt = {t.name: v for t, v in get_spec("stt").example_inputs().items()}
    assert stt["audio"].dtype == np.float32 and stt["audio"].shape == (16000,)
    assert np.abs(stt["audio"]).max() > 0.1  # a tone, not silence
    with pytest.raises(ValueError, match="has no inputs"):
        get_spec("tts").example_inputs({"nope": 1})


def test_the_registry_names_every_role_once() -> None:
    assert MODEL_NAMES == tuple(ROLES) == ("stt", "llm", "tts", "embedder")
    for role in ROLES.values():
        assert role.spec().name == role.name
        assert (EXPORT / role.name / "cli.py").is_file()
    settings = type("S", (), {"stt_enabled": True, "llm_enabled": False, "tts_enabled": True,
                              "memory_enabled": True})()
    assert enabled_roles(settings) == ["stt", "tts", "embedder"]
    assert not ROLES["embedder"].required


def test_the_snapshot_holds_every_export_module_the_model_imports(tmp_path: Path) -> None:
    files = {str(p.relative_to(EXPORT)) for p in closure(EXPORT / "llm" / "triton_model.py")}
    assert {"llm/genai.py", "llm/generation.py", "llm/prefix_cache.py", "specs/llm.py",
            "specs/base.py", "streaming.py", "__init__.py", "llm/__init__.py"} <= files
    assert "llm/builder.py" not in files and "repository.py" not in files
    copied = snapshot(EXPORT / "embedder" / "triton_model.py", tmp_path)
    assert Path("code/export/embedder/runtime.py") in copied
    assert (tmp_path / "code" / "export" / "specs" / "embedder.py").read_text() == \
        (EXPORT / "specs" / "embedder.py").read_text()


def test_token_counts_follow_the_served_llm_version(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    from orchestrator.chat.service import ServedTokenCounter

    def version(number: int, tokenizer: Tokenizer) -> None:
        directory = tmp_path / "llm" / str(number)
        directory.mkdir(parents=True)
        (directory / "manifest.json").write_text("{}")
        tokenizer.save(str(directory / "tokenizer.json"))

    words = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    letters = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    letters.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    version(1, words)
    version(2, letters)
    pins: dict[str, str] = {}
    count = ServedTokenCounter(tmp_path, pins)
    assert count("hello big world") == 15  # no pin: the newest version (letters)
    pins["llm"] = "1"  # version 1 promoted
    assert count("hello big world") == 3
    pins["llm"] = "2"
    assert count("hello big world") == 15


def test_constant_weight_chains_are_folded_into_initializers(tmp_path: Path) -> None:
    """int8 weight -> Cast -> Mul(scale) -> Add(bias) feeding a MatMul becomes one float
    initializer, with the same result."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from export.stt.moonshine.fold import fold_constants

    rng = np.random.default_rng(0)
    weight = rng.integers(-127, 127, (4, 3)).astype(np.int8)
    graph = helper.make_graph(
        [helper.make_node("Cast", ["w8"], ["wf"], to=TensorProto.FLOAT),
         helper.make_node("Mul", ["wf", "scale"], ["ws"]),
         helper.make_node("Add", ["ws", "zero"], ["w"]),
         helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        [numpy_helper.from_array(weight, "w8"),
         numpy_helper.from_array(np.array([0.05], np.float32), "scale"),
         numpy_helper.from_array(np.array([0.0], np.float32), "zero")])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    x = rng.normal(size=(2, 4)).astype(np.float32)
    before = ort.InferenceSession(str(path)).run(None, {"x": x})[0]
    assert fold_constants(path) == 3
    folded = onnx.load(str(path))
    assert [n.op_type for n in folded.graph.node] == ["MatMul"]
    assert [i.name for i in folded.graph.initializer] == ["w"]
    np.testing.assert_array_equal(ort.InferenceSession(str(path)).run(None, {"x": x})[0],
                                  before)


def test_the_bundled_moonshine_is_found_without_loading_its_library(tmp_path: Path) -> None:
    """moonshine_cpp's import dlopens a library built against ONNX Runtime 1.22, which fails
    once the project's ONNX Runtime is loaded: the export only needs its files."""
    import sys

    import onnxruntime  # noqa: F401  (loaded first, as in a long process)

    from export.stt.moonshine.export import bundled_base

    source = bundled_base(tmp_path / "moonshine")
    assert {p.name for p in source.iterdir()} == {"encoder_model.ort",
                                                  "decoder_model_merged.ort", "tokenizer.json"}
    assert "moonshine_cpp" not in sys.modules


@pytest.mark.parametrize(("record", "message"), [
    ("{not json", "unreadable"),
    ('{"profile": "tpu"}', "unknown profile"),
    ('{"profile": "gpu", "instance_kind": "fpga"}', "instance_kind must be cpu or gpu"),
])
def test_a_bad_profile_record_is_named_and_refuses_validation(tmp_path: Path, record: str,
                                                              message: str) -> None:
    from export.profiles import repository_profile
    from export.repository import ModelRepository
    from orchestrator.models.validation import check_config

    (tmp_path / "profile.json").write_text(record)
    with pytest.raises(ValueError, match=message):
        repository_profile(tmp_path)
    spec = get_spec("embedder")
    (tmp_path / "embedder").mkdir()
    (tmp_path / "embedder" / "config.pbtxt").write_text(spec.config_pbtxt())
    check = check_config(ModelRepository(tmp_path), spec)
    assert not check.passed and "profile.json" in check.detail
