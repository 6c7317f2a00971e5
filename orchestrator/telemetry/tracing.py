"""OpenTelemetry traces, opt-in through OpenTelemetry's own environment variables.

Tracing is on when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``, ``console``) or
an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), unless ``OTEL_SDK_DISABLED=true``. The exporter
reads the rest itself (headers, protocol, timeouts; ``OTEL_SERVICE_NAME`` names the
service, ``voicechat`` by default). Each HTTP request gets a trace (Litestar's
OpenTelemetry middleware), each realtime turn one of its own, with spans for the stages
and every Triton call. Off, the tracer is OpenTelemetry's no-op proxy: a span costs a
function call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from opentelemetry import trace

log = logging.getLogger(__name__)
TRACER = trace.get_tracer("voicechat")
"""Resolves to the installed provider when there is one (a no-op until then)."""


def wanted(environ: Mapping[str, str]) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return exporters != "none"
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure_tracing(environ: Mapping[str, str] | None = None) -> Callable[[], None] | None:
    """Install a tracer provider with the exporters the environment names; returns its
    shutdown (which flushes), or None when tracing is off."""
    environ = os.environ if environ is None else environ
    if not wanted(environ):
        return None
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    resource = Resource.create({} if environ.get("OTEL_SERVICE_NAME")
                               else {SERVICE_NAME: "voicechat"})
    provider = TracerProvider(resource=resource)
    for name in (environ.get("OTEL_TRACES_EXPORTER") or "otlp").split(","):
        name = name.strip().lower()
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter: Any = OTLPSpanExporter()
        elif name == "console":
            exporter = ConsoleSpanExporter()
        else:
            raise ValueError(f"OTEL_TRACES_EXPORTER={name!r}: this service exports otlp "
                             "(http/protobuf) or console")
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    log.info("tracing on: %s", environ.get("OTEL_TRACES_EXPORTER") or "otlp")
    return provider.shutdown


def tracing_on() -> bool:
    """A real (SDK) tracer provider is installed: by :func:`configure_tracing` or a test."""
    return not isinstance(trace.get_tracer_provider(),
                          trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def opentelemetry_plugin() -> Any:
    """A trace per HTTP request; WebSocket frames are not traced one by one (a realtime
    socket carries thousands: its turns have traces of their own)."""
    from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin

    return OpenTelemetryPlugin(OpenTelemetryConfig(
        scopes={"http"}, exclude_spans=["receive", "send"],  # type: ignore[arg-type]
        exclude=["^/metrics$", "^/livez$", "^/readyz$"],
        scope_span_details_extractor=lambda scope: (str(scope.get("method", "HTTP")), {})))


def route_span_middleware(app: Any) -> Any:
    """Names the request's span by its route template once routing has found it (the
    OpenTelemetry middleware starts the span before routing; Litestar's default names it
    by the raw path, which puts session and user ids into span names)."""

    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        route = scope.get("path_template")
        if scope["type"] == "http" and route:
            span = trace.get_current_span()
            span.update_name(f"{scope.get('method', '')} {route}")
            span.set_attribute("http.route", route)
        await app(scope, receive, send)

    return middleware


def trace_reply(status: str, timings: Any) -> None:
    """Put a reply's status and stage timings on the current span (the response's)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attribute("voicechat.status", status)
    if timings is not None:
        import msgspec

        for name, value in msgspec.structs.asdict(timings).items():
            if value is not None:
                span.set_attribute(f"voicechat.{name}", value)


@contextlib.contextmanager
def traced(name: str, attributes: dict[str, Any] | None = None) -> Iterator[Any]:
    """A span current for the block; a block cancelled (speculative work the user's speech
    overtook, a reply cut by barge-in) is marked ``voicechat.cancelled``."""
    with TRACER.start_as_current_span(name, attributes=attributes) as span:
        try:
            yield span
        except asyncio.CancelledError:
            span.set_attribute("voicechat.cancelled", True)
            raise
