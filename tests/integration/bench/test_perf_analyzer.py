"""scripts/perf_analyzer.sh runs NVIDIA's perf_analyzer against the probe model."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import triton_stats
from tests.support.probe_spec import SPEC

pytestmark = [pytest.mark.triton, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "perf_analyzer.sh"


@pytest.fixture(scope="session")
def perf_analyzer_env(tmp_path_factory) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = dict(os.environ, PYTHON=sys.executable,
               PERF_ANALYZER_CACHE=os.environ.get(
                   "PERF_ANALYZER_CACHE", str(Path.home() / ".cache/voicechat/perf_analyzer")))
    fetched = subprocess.run([str(SCRIPT), "--fetch-only"], env=env, capture_output=True,
                             text=True, timeout=600)
    if fetched.returncode != 0:
        pytest.skip(f"perf_analyzer could not be fetched: {fetched.stderr[-500:]}")
    return env


def test_perf_analyzer_script_measures_each_level(probe, perf_analyzer_env, tmp_path) -> None:
    out = tmp_path / "pa"
    with triton_stats.collect(probe, [SPEC.name]) as window:
        run = subprocess.run(
            [str(SCRIPT), "--url", probe, "--out", str(out), "--levels", "1 4",
             "--spec", "tests.support.probe_spec:SPEC", SPEC.name],
            env={**perf_analyzer_env, "PA_REQUESTS": "40"}, capture_output=True, text=True,
            timeout=600, cwd=ROOT)
    print(run.stdout[-3000:])
    assert run.returncode == 0, run.stderr[-3000:]
    inputs = (out / "inputs" / f"{SPEC.name}.json").read_text()
    assert '"label"' in inputs and '"shape": [16]' in inputs
    for level in (1, 4):
        rows = list(csv.DictReader((out / f"{SPEC.name}-c{level}.csv").open()))
        assert rows and int(rows[0]["Concurrency"]) == level
        assert float(rows[0]["Inferences/Second"]) > 0
    # perf_analyzer's requests all reached the model (and only they did)
    stats = window.delta[SPEC.name]
    assert stats.inference_count >= 2 * 40
    assert stats.success.count == stats.inference_count
    print(triton_stats.format_table(window.delta, "during perf_analyzer"))
