"""``voicechat bench auth`` runs its three modes side by side and writes its figures."""

from __future__ import annotations

import json

from bench import run_bench
from orchestrator.cli import build_parser
from tests.support.settings import base_settings


def test_bench_auth_reports_every_mode(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    args = build_parser().parse_args(["bench", "auth", "--requests", "40", "--rounds", "2",
                                      "--out", str(tmp_path)])
    assert run_bench(args, base_settings()) == 0
    results = json.loads((tmp_path / "auth.json").read_text())["results"]
    assert set(results["http_ms"]) == {"open", "key", "key-uncached"}
    assert all(s["count"] == 40 and s["p50"] > 0 for s in results["http_ms"].values())
    assert results["middleware_us"]["count"] == 20000
    out = capsys.readouterr().out
    assert "key-uncached" in out and "key check + limiter" in out
