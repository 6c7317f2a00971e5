"""The GPU profile of the repository and the execution-provider choice of model.py."""

from __future__ import annotations

from export.profiles import PROFILES, write_profile
from export.providers import CPU, CUDA, onnx_providers
from export.specs.base import DynamicBatching, ModelSpec, Tensor

STT_LIKE = ModelSpec(name="stt", description="batched", inputs=(Tensor("audio", "FP32", (-1,)),),
                     outputs=(Tensor("text", "BYTES", (1,)),), max_batch_size=8,
                     dynamic_batching=DynamicBatching(max_queue_delay_us=1000))
LLM_LIKE = ModelSpec(name="llm", description="decoupled", inputs=(Tensor("p", "BYTES", (1,)),),
                     outputs=(Tensor("t", "BYTES", (1,)), Tensor("final", "BOOL", (1,))),
                     decoupled=True)
EMBEDDER_LIKE = ModelSpec(name="embedder", description="small batches",
                          inputs=(Tensor("texts", "BYTES", (1,)),),
                          outputs=(Tensor("v", "FP32", (4,)),), max_batch_size=16)


def test_gpu_profile_sets_kind_instances_and_batching_within_the_spec_limits() -> None:
    gpu = PROFILES["gpu"]
    stt = gpu.config_pbtxt(STT_LIKE)
    assert "instance_group [ { kind: KIND_GPU count: 1 } ]" in stt
    assert "preferred_batch_size: [ 4, 8 ]" in stt
    assert "max_queue_delay_microseconds: 5000" in stt
    llm = gpu.config_pbtxt(LLM_LIKE)
    assert "kind: KIND_GPU count: 2" in llm and "dynamic_batching" not in llm
    embedder = gpu.apply(EMBEDDER_LIKE)
    # 32 is above the spec's max_batch_size of 16: left out
    assert embedder.dynamic_batching == DynamicBatching(2000, (8, 16))
    assert embedder.max_batch_size == 16
    # the cpu profile is the checked-in config, unchanged
    assert PROFILES["cpu"].config_pbtxt(STT_LIKE) == STT_LIKE.config_pbtxt()


def test_write_profile_links_versions_and_writes_gpu_configs(tmp_path) -> None:
    source, target = tmp_path / "repo", tmp_path / "gpu"
    (source / "stt" / "1").mkdir(parents=True)
    (source / "stt" / "1" / "model.py").write_text("code")
    (source / "stt" / "config.pbtxt").write_text(STT_LIKE.config_pbtxt())
    written = write_profile(PROFILES["gpu"], {"stt": STT_LIKE, "llm": LLM_LIKE}, target, source)
    assert written == ["stt", "llm"]
    linked = target / "stt" / "1" / "model.py"
    assert linked.read_text() == "code"
    assert linked.stat().st_ino == (source / "stt" / "1" / "model.py").stat().st_ino
    assert "KIND_GPU" in (target / "stt" / "config.pbtxt").read_text()
    assert "KIND_CPU" in (source / "stt" / "config.pbtxt").read_text()


def test_onnx_providers_pick_cuda_only_for_gpu_instances_with_cuda_available() -> None:
    gpu_args = {"model_instance_kind": "GPU", "model_instance_device_id": "1"}
    assert onnx_providers(gpu_args, [CUDA, CPU]) == [(CUDA, {"device_id": 1}), CPU]
    assert onnx_providers(gpu_args, [CPU]) == [CPU]
    assert onnx_providers({"model_instance_kind": "CPU"}, [CUDA, CPU]) == [CPU]
    assert onnx_providers(None) == [CPU]
    assert onnx_providers(gpu_args) == [CPU]  # onnxruntime (CPU build) here: no CUDA


def test_served_graphs_neither_spin_nor_keep_an_arena(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Every served ONNX Runtime session (the voices, both speech recognisers, the
    embedder) is opened with the same options: idle threads sleep instead of
    busy-waiting beside the other models, and freed memory goes back to the system."""
    import onnx
    from onnx import TensorProto, helper

    from export.providers import session_options
    from export.tts.runtime.voices import open_session

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = tmp_path / "identity.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    for options in (session_options(2), open_session(path, 2).get_session_options()):
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        assert options.enable_cpu_mem_arena is False
        assert options.intra_op_num_threads == 2
