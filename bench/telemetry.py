"""Cost of metrics and tracing: on a cheap route over HTTP, and per realtime turn.

Starts one orchestrator per mode in this process (uvicorn on loopback, SQLite, no models)
and times ``GET /api/sessions/{id}`` (one SQL read) over a kept-alive connection, the
modes interleaved round by round so machine drift hits them alike:

* ``off``: METRICS_ENABLED=false, no tracing;
* ``metrics``: /metrics on (the default): the Prometheus middleware per request;
* ``metrics+tracing``: also OpenTelemetry, each request's span batched to an exporter
  that drops it (a collector's cost is its own).

Per realtime turn it times, in process, the telemetry calls one spoken turn makes: the
turn, stt and response spans, three Triton call spans with their latency histograms
(stt, llm, tts) and the reply's stage histograms, with tracing off and on.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from bench.live import interleaved_gets, serving
from bench.options import add_output
from bench.results import write_results
from bench.stats import Summary

MODES = ("off", "metrics", "metrics+tracing")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", type=int, default=2000, help="requests per mode")
    parser.add_argument("--rounds", type=int, default=10,
                        help="interleaved rounds the requests are split into")
    parser.add_argument("--turns", type=int, default=5000, help="in-process turns per mode")
    add_output(parser)


def _install_tracing() -> Any:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Dropping(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropping()))
    trace.set_tracer_provider(provider)
    return provider


async def _http(args: argparse.Namespace, base: Any, work: Path) -> dict[str, Any]:
    import httpx

    from orchestrator.app import create_app

    clients, paths = {}, {}
    async with AsyncExitStack() as stack:
        for mode in MODES:
            if mode == "metrics+tracing":  # apps made before this one stay untraced
                _install_tracing()
            settings = dataclasses.replace(
                base, database_url=f"sqlite+aiosqlite:///{work / mode}.db",
                data_dir=str(work / mode.replace("+", "-")), triton_url=None,
                memory_enabled=False, stt_enabled=False, llm_enabled=False,
                tts_enabled=False, host="127.0.0.1", auth_mode="off",
                metrics_enabled=mode != "off")
            app = create_app(settings)
            url = await stack.enter_async_context(serving(app, access_log=False))
            session = await app.state.runtime.conversations.create_session("bench")
            clients[mode] = await stack.enter_async_context(httpx.AsyncClient(base_url=url))
            paths[mode] = f"/api/sessions/{session.id}"
        latencies = await interleaved_gets({m: (clients[m], paths[m]) for m in MODES},
                                           args.requests, args.rounds)
    return {mode: Summary.of(values).to_json() for mode, values in latencies.items()}


def _turn_calls(n: int) -> dict[str, Any]:
    """Microseconds of one turn's telemetry calls (whatever tracer is installed now)."""
    from orchestrator.inference.client import observed
    from orchestrator.realtime.events import Timings
    from orchestrator.telemetry.metrics import observe_reply
    from orchestrator.telemetry.tracing import TRACER, trace_reply

    timings = Timings(turn_detection_ms=210.0, stt_ms=180.0, llm_first_token_ms=90.0,
                      tts_first_audio_ms=120.0, voice_to_voice_ms=640.0)
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        with TRACER.start_as_current_span("realtime.turn", attributes={
                "voicechat.session_id": "s", "voicechat.item_id": "i"}):
            with TRACER.start_as_current_span("stt"), observed("stt", "infer", "1"):
                pass
            with TRACER.start_as_current_span("realtime.response"):
                with observed("llm", "stream", "1"), observed("tts", "stream", "1"):
                    pass
                observe_reply("bench", "completed", timings)
                trace_reply("completed", timings)
        samples.append((time.perf_counter() - started) * 1e6)
    return Summary.of(samples).to_json()


def run(args: argparse.Namespace, settings: Any) -> int:
    turn_off = _turn_calls(args.turns)  # before any tracer provider exists
    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as work:
        http = asyncio.run(_http(args, settings, Path(work)))
    turn_on = _turn_calls(args.turns)  # the tracing provider is installed by now
    print(f"GET /api/sessions/{{id}} over loopback, {args.requests} requests per mode, "
          f"{args.rounds} interleaved rounds")
    print(f"{'mode':<16} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for mode, summary in http.items():
        print(f"{mode:<16} {summary['p50']:>8.3f} {summary['p90']:>8.3f} "
              f"{summary['p99']:>8.3f} {summary['mean']:>8.3f}")
    print(f"one turn's telemetry in process: metrics only p50 {turn_off['p50']:.1f} us, "
          f"metrics+tracing p50 {turn_on['p50']:.1f} us (p99 {turn_on['p99']:.1f} us)")
    path = write_results(args.out, "telemetry", {"requests": args.requests,
                                                 "rounds": args.rounds, "turns": args.turns},
                         {"http_ms": http, "turn_us": {"metrics": turn_off,
                                                       "metrics+tracing": turn_on}})
    print(f"results: {path}")
    return 0
