"""``python -m export llm`` through ONNX Runtime GenAI's model builder on tiny random
Llama and Qwen2 checkpoints: fp32 equals transformers token for token, int8/int4 report
greedy agreement and a perplexity ratio, and the perplexity gate refuses a version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from export.cli import main
from export.errors import ParityError
from export.repository import ModelRepository
from tests.support.llm_fixtures import export_llm
from tests.support.tiny_llm import build_tiny_llama, build_tiny_qwen2

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("llm-sources")
    return {"llama": build_tiny_llama(base / "llama"), "qwen2": build_tiny_qwen2(base / "qwen")}


def figures(manifest) -> dict[str, float]:  # type: ignore[no-untyped-def]
    return {p.name: p.value for p in manifest.parity}


def test_qwen2_fp32_generates_exactly_what_transformers_does(sources, tmp_path: Path) -> None:
    manifest = export_llm(sources["qwen2"], tmp_path, 1, precision="fp32")
    got = figures(manifest)
    assert got["greedy_32_tokens"] == 0.0  # differing sequences
    assert got["perplexity_ratio"] == pytest.approx(1.0, abs=1e-3)
    assert manifest.source["architecture"] == "Qwen2ForCausalLM"
    assert manifest.extra["engine"] == "onnxruntime-genai"
    config = json.loads((tmp_path / "llm" / "1" / "genai_config.json").read_text())
    assert config["model"]["type"] == "qwen2"
    assert {"model.onnx", "genai_config.json", "tokenizer.json", "chat_template.jinja",
            "generation.json", "model.py"} <= set(manifest.files)


def test_quantised_versions_report_agreement_and_perplexity(sources, tmp_path: Path) -> None:
    int8 = export_llm(sources["llama"], tmp_path, 1, precision="int8")
    int4 = export_llm(sources["llama"], tmp_path, 2, precision="int4")
    for manifest in (int8, int4):
        got = figures(manifest)
        assert 0.0 <= got["greedy_32_tokens_agreement"] <= 1.0
        assert 0.95 < got["perplexity_ratio"] <= 1.05
        assert got["perplexity_exported"] == pytest.approx(
            got["perplexity_source"] * got["perplexity_ratio"])
    # the int4 preset keeps the output projection at int8, recorded with the version
    assert int4.extra["builder_options"]["matmul_mixed_precision"].startswith(
        "last_matmul:int8")
    sizes = [(tmp_path / "llm" / str(v) / "model.onnx.data").stat().st_size
             if (tmp_path / "llm" / str(v) / "model.onnx.data").exists()
             else (tmp_path / "llm" / str(v) / "model.onnx").stat().st_size for v in (1, 2)]
    assert sizes[1] < sizes[0]


def test_perplexity_gate_refuses_the_version(sources, tmp_path: Path) -> None:
    # the int4 preset costs the tiny Llama +2.6 % perplexity: over a 1 % bound
    with pytest.raises(ParityError, match="perplexity_ratio"):
        export_llm(sources["llama"], tmp_path, 1, precision="int4",
                   max_perplexity_increase=0.01)
    assert ModelRepository(tmp_path).versions("llm") == []


def test_bad_builder_option_is_a_clear_error(sources, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(["llm", "--source", str(sources["llama"]), "--repo", str(tmp_path),
                 "--builder-option", "no-equals-sign"])
    assert code == 1
    assert "invalid builder option 'no-equals-sign': expected KEY=VALUE" in \
        capsys.readouterr().err
    assert ModelRepository(tmp_path).versions("llm") == []
