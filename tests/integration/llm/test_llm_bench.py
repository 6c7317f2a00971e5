"""``voicechat bench llm`` on the tiny model served by the session Triton: the served and
in-process GenAI rows, the follow-up turn that reuses its prefix, the concurrency table
and the version's quality figures; no llama.cpp row for a non-GGUF source."""

from __future__ import annotations

import dataclasses
import re

import pytest

from bench import run_bench
from orchestrator.cli import build_parser
from tests.integration.llm.conftest import TINY_VERSION
from tests.support.settings import base_settings

pytestmark = [pytest.mark.triton]


def test_llm_bench_reports_engines_prefix_reuse_and_quality(triton_server, tiny_llm, tmp_path,  # type: ignore[no-untyped-def]
                                                            capsys) -> None:
    settings = dataclasses.replace(base_settings(), triton_url=triton_server.grpc_url,
                                   model_repository=str(triton_server.repository))
    output = tmp_path / "llm.md"
    args = build_parser().parse_args([
        "bench", "llm", "--source", str(tiny_llm), "--version", str(TINY_VERSION),
        "--max-tokens", "8", "--concurrency", "1,2", "--skip-transformers",
        "--output", str(output)])
    assert run_bench(args, settings) == 0
    report = capsys.readouterr().out
    assert output.read_text() == report
    assert f"| Triton `llm` v{TINY_VERSION} (batched decoding, streamed over gRPC) |" in report
    assert "| ONNX Runtime GenAI in process (same version) |" in report
    assert "llama.cpp" not in report  # the source is not a GGUF
    reused = int(re.search(r"\| prefix reused \| \d+ \| (\d+) \|", report).group(1))
    cold = int(re.search(r"\| nothing to reuse \| \d+ \| (\d+) \|", report).group(1))
    assert reused > cold and reused > 20
    assert re.search(r"^\| 1 \| [\d.]+ \| \d+ \|$", report, re.M)
    assert re.search(r"^\| 2 \| [\d.]+ \| \d+ \|$", report, re.M)
    assert "precision fp32" in report and "(ratio 1.000)" in report
