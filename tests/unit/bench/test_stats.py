"""Latency statistics and genai-perf LLM metrics on synthetic timings with known answers."""

from __future__ import annotations

import math

import pytest

from bench.stats import (
    LatencyReport,
    LLMReport,
    RequestRecord,
    Summary,
    benchmark_duration,
    percentile,
)


def test_percentiles_interpolate_linearly_between_ranks() -> None:
    data = [1.0, 2.0, 3.0, 4.0]
    assert percentile(data, 50) == 2.5
    assert percentile(data, 90) == pytest.approx(3.7)
    assert percentile(data, 0) == 1.0 and percentile(data, 100) == 4.0
    assert math.isnan(percentile([], 50))


def test_summary_of_one_to_one_hundred() -> None:
    s = Summary.of(range(1, 101))
    assert (s.count, s.min, s.max, s.mean) == (100, 1.0, 100.0, 50.5)
    assert s.p50 == 50.5
    assert s.p90 == pytest.approx(90.1)
    assert s.p95 == pytest.approx(95.05)
    assert s.p99 == pytest.approx(99.01)
    ms = s.scaled(1000)
    assert ms.count == 100 and ms.p50 == 50500.0


def test_empty_summary_is_nan_and_null_in_json() -> None:
    s = Summary.of([])
    assert s.count == 0 and math.isnan(s.p99)
    assert s.to_json()["p99"] is None


def test_latency_report_counts_errors_and_uses_the_first_start_to_last_response_window() -> None:
    records = [
        RequestRecord(start=0.0, responses=[0.010]),
        RequestRecord(start=0.005, responses=[0.025]),
        RequestRecord(start=0.010, responses=[0.040]),
        RequestRecord(start=0.020, responses=[0.100]),
        RequestRecord(start=0.030, error="boom"),
    ]
    assert benchmark_duration(records) == pytest.approx(0.100)
    report = LatencyReport.of(records)
    assert (report.requests, report.errors) == (4, 1)
    assert report.throughput_rps == pytest.approx(40.0)
    # latencies 10, 20, 30, 80 ms
    assert report.latency_ms.p50 == pytest.approx(25.0)
    assert report.latency_ms.mean == pytest.approx(35.0)
    assert report.latency_ms.p90 == pytest.approx(65.0)


def test_llm_metrics_follow_genai_perf_definitions() -> None:
    # request A: starts at 0, tokens at 0.1 (empty first response), 0.2, 0.3, 0.5 (2 tokens)
    a = RequestRecord(start=0.0, responses=[0.1, 0.2, 0.3, 0.5], tokens=[0, 1, 1, 2])
    # request B: starts at 0.1, one response with one token at 0.4
    b = RequestRecord(start=0.1, responses=[0.4], tokens=[1])
    # request C: failed
    c = RequestRecord(start=0.2, error="timeout")
    assert a.time_to_first_token == pytest.approx(0.2)  # empty first response skipped
    assert a.output_tokens == 4
    assert a.inter_token_latency == pytest.approx((0.5 - 0.2) / 3)
    assert b.inter_token_latency is None  # one token: no ITL

    report = LLMReport.of([a, b, c])
    assert (report.requests, report.errors) == (2, 1)
    assert report.duration_s == pytest.approx(0.5)
    assert report.request_throughput_rps == pytest.approx(4.0)
    assert report.output_token_throughput_tps == pytest.approx(10.0)  # 5 tokens / 0.5 s
    assert report.time_to_first_token_ms.p50 == pytest.approx(250.0)  # 200 and 300 ms
    assert report.inter_token_latency_ms.count == 1
    assert report.inter_token_latency_ms.mean == pytest.approx(100.0)
    assert report.request_latency_ms.max == pytest.approx(500.0)
    assert report.output_token_throughput_per_request_tps.p50 == pytest.approx(
        (4 / 0.5 + 1 / 0.3) / 2)
    doc = report.to_json()
    assert doc["requests"] == 2 and doc["time_to_first_token_ms"]["count"] == 2


def test_responses_without_token_counts_count_one_token_each() -> None:
    r = RequestRecord(start=1.0, responses=[1.5, 1.6, 1.7])
    assert r.output_tokens == 3
    assert r.time_to_first_token == pytest.approx(0.5)
    assert r.inter_token_latency == pytest.approx(0.1)
