"""``voicechat bench telemetry`` times its modes side by side and writes its figures. It
runs in a process of its own: it installs a tracer provider, which is once per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_bench_telemetry_reports_every_mode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "AUTH_MODE": "off", "DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-m", "orchestrator", "bench", "telemetry",
                           "--requests", "40", "--rounds", "2", "--turns", "100",
                           "--out", str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "telemetry.json").read_text())["results"]
    assert set(results["http_ms"]) == {"off", "metrics", "metrics+tracing"}
    assert all(s["count"] == 40 and s["p50"] > 0 for s in results["http_ms"].values())
    assert {k: v["count"] for k, v in results["turn_us"].items()} == \
        {"metrics": 100, "metrics+tracing": 100}
    assert "metrics+tracing" in done.stdout and "one turn's telemetry" in done.stdout
