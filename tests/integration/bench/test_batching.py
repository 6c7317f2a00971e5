"""``voicechat bench batching`` on the probe: the same model without and with the batcher."""

from __future__ import annotations

import json

import pytest

from bench import run_bench
from bench.batching import batching_configs, served_config
from orchestrator.cli import build_parser
from tests.support.probe_spec import SPEC
from tests.support.settings import base_settings

pytestmark = [pytest.mark.triton]


def run_cli(argv: list[str]) -> int:
    """``voicechat ...`` without main()'s logging set-up (pytest owns the streams)."""
    return run_bench(build_parser().parse_args(argv), base_settings())


def test_batching_bench_toggles_the_batcher_and_restores_the_disk_config(probe, tmp_path,
                                                                        capsys) -> None:
    status = run_cli(["bench", "batching", "--model", SPEC.name,
                   "--spec", "tests.support.probe_spec:SPEC", "--url", probe,
                   "--levels", "1,8", "--requests", "48", "--warmup", "1", "--no-progress",
                   "--out", str(tmp_path)])
    assert status == 0
    printed = capsys.readouterr().out
    print(printed)
    doc = json.loads((tmp_path / f"batching-{SPEC.name}.json").read_text())
    rows = {row["concurrency"]: row for row in doc["results"]}
    assert sorted(rows) == [1, 8]
    for row in rows.values():
        for mode in ("off", "on"):
            assert row[mode]["requests"] == 48 and row[mode]["errors"] == 0
            assert row[mode]["triton"]["inference_count"] == 48
        # without the batcher every request is its own execution
        assert row["off"]["triton"]["execution_count"] == 48
        assert row["off"]["triton"]["batch_sizes"] == {"1": 48}
        assert row["gain"] > 0
    # one worker can never fill a batch: the batcher only adds its queue delay
    assert rows[1]["on"]["triton"]["batch_sizes"] == {"1": 48}
    assert "dynamic_batching" not in doc["settings"]["configs"]["off"]
    for png in ("latency", "throughput", "stages"):
        assert (tmp_path / f"batching-{SPEC.name}-{png}.png").is_file()
    assert "dynamic batching gain" in printed
    # the repository's configuration (with the batcher) is served again
    assert "dynamic_batching" in served_config(probe, SPEC.name)


def test_models_without_batch_dimension_cannot_be_batched() -> None:
    with pytest.raises(ValueError, match="max_batch_size is 0"):
        batching_configs({"name": "llm", "max_batch_size": 0}, 1000)
    configs = batching_configs({"name": "m", "max_batch_size": 4}, 1500)
    assert configs["on"]["dynamic_batching"] == {"max_queue_delay_microseconds": 1500}
    assert "dynamic_batching" not in configs["off"]
