"""OpenTelemetry traces exported to an in-process collector: a trace per HTTP request with
its Triton calls inside, and a trace per realtime turn with its stage spans."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from litestar.testing import AsyncTestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from orchestrator.telemetry.tracing import TRACER, configure_tracing, tracing_on, wanted
from tests.support.fake_voice import silence, speak
from tests.support.realtime import tiny_voice_server
from tests.support.settings import base_settings
from tests.support.tts_fixtures import KOREAN_VOICE


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """A tracer provider exporting to memory, as ``configure_tracing`` installs one for
    OTLP; afterwards the process is left untraced again, for the tests that follow."""
    from opentelemetry.util._once import Once

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    try:
        yield exporter
    finally:
        provider.shutdown()
        trace._TRACER_PROVIDER = None  # OpenTelemetry's own tests reset it the same way
        trace._TRACER_PROVIDER_SET_ONCE = Once()
        TRACER._real_tracer = None  # the proxy keeps the provider's tracer once it has one


def by_name(exporter: InMemorySpanExporter) -> dict[str, list]:
    found: dict[str, list] = {}
    for span in exporter.get_finished_spans():
        found.setdefault(span.name, []).append(span)
    return found


def test_tracing_is_opt_in_through_the_standard_variables() -> None:
    assert not wanted({})
    assert wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert wanted({"OTEL_TRACES_EXPORTER": "console"})
    assert not wanted({"OTEL_TRACES_EXPORTER": "none",
                       "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert not wanted({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"})
    assert configure_tracing({}) is None and not tracing_on()
    with pytest.raises(ValueError, match="zipkin"):
        configure_tracing({"OTEL_TRACES_EXPORTER": "zipkin"})


@pytest.mark.triton
@pytest.mark.asyncio
async def test_a_request_trace_holds_its_triton_calls(spans, triton_server, tts_model,
                                                      tmp_path: Path) -> None:
    from orchestrator.app import create_app

    settings = dataclasses.replace(
        base_settings(), database_url=f"sqlite+aiosqlite:///{tmp_path / 't.db'}",
        data_dir=str(tmp_path / "d"), triton_url=triton_server.grpc_url, stt_enabled=False,
        llm_enabled=False, memory_enabled=False, log_format="text")
    async with AsyncTestClient(app=create_app(settings)) as client:
        spoken = await client.post("/api/tts/synthesize",
                                   json={"text": "안녕하세요", "voice": KOREAN_VOICE})
        assert spoken.status_code == 200, spoken.text
        assert (await client.get("/api/sessions/missing")).status_code == 404
    found = by_name(spans)
    (request,) = found["POST /api/tts/synthesize"]
    assert request.kind == trace.SpanKind.SERVER
    assert request.attributes["http.status_code"] == 200
    calls = [s for name, group in found.items() if name.startswith("triton ") and "tts" in name
             for s in group]
    assert calls, sorted(found)
    for call in calls:  # inside the request's trace, as its children
        assert call.context.trace_id == request.context.trace_id
        assert call.parent.span_id == request.context.span_id
        assert call.kind == trace.SpanKind.CLIENT
        assert call.attributes["triton.model"] == "tts"
    (missing,) = found["GET /api/sessions/{session_id}"]
    assert missing.attributes["http.status_code"] == 404
    assert missing.attributes["http.route"] == "/api/sessions/{session_id}"  # never the id
    assert missing.context.trace_id != request.context.trace_id


@pytest.mark.asyncio
@pytest.mark.triton
async def test_a_realtime_turn_is_a_trace_with_its_stages(spans, tmp_path: Path,
                                                          tiny_voice) -> None:  # type: ignore[no-untyped-def]
    question = speak("What will the weather be like tomorrow", tmp_path, rate=24000)
    async with tiny_voice_server(tmp_path, tiny_voice,
                                 realtime_turn_detection="server_vad") as live:
        session_id = await live.new_session("alice")
        async with live.connect("alice", session_id) as client:
            await client.next()
            await client.append(np.concatenate([silence(0.5, 24000), question,
                                                silence(1.0, 24000)]), 24000, chunk_ms=40)
            done = (await client.until("response.done"))[-1]
    found = by_name(spans)
    # Speculative turns the user's speech overtook are in the traces too, marked.
    turns = [t for t in found["realtime.turn"] if not t.attributes.get("voicechat.cancelled")]
    (turn,) = turns
    assert turn.attributes["voicechat.session_id"] == session_id
    assert turn.parent is None  # a trace of its own, not one span per socket frame
    (stt,) = [s for s in found["stt"] if s.parent.span_id == turn.context.span_id]
    (response,) = [r for r in found["realtime.response"]
                   if r.parent.span_id == turn.context.span_id]
    assert response.attributes["voicechat.response_id"] == done["response"]["id"]
    # completed, or incomplete when the 16-token reply reached its limit
    assert response.attributes["voicechat.status"] == done["response"]["status"]
    assert done["response"]["status"] in ("completed", "incomplete")
    assert response.attributes["voicechat.voice_to_voice_ms"] == \
        done["response"]["timings"]["voice_to_voice_ms"]
    assert turn.start_time <= stt.start_time < stt.end_time <= response.start_time
    assert not [s for s in spans.get_finished_spans() if "websocket" in s.name.lower()]
