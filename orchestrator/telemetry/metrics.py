"""Every Prometheus metric the orchestrator exports, in one place.

HTTP requests and WebSocket connections are counted by Litestar's Prometheus middleware
(``voicechat_http_*``, by route template and status; see :func:`prometheus_config`); the
metrics here are the product's own: realtime sessions, turn stages, Triton calls, memory
writes, rate-limit rejections and the shared state's fallback. Metrics live in
prometheus-client's process registry, which is what a scrape of one replica should see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from litestar.plugins.prometheus import PrometheusConfig

NAMESPACE = "voicechat"
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
           30.0, 60.0)
"""Buckets for latencies a user waits on: fine below a second, where the voice goals are."""

REALTIME_SESSIONS = Gauge(
    "realtime_sessions", "Realtime sockets open in this process", ["protocol"],
    namespace=NAMESPACE)
TURN_STAGE_SECONDS = Histogram(
    "turn_stage_seconds", "Stage timings of replies (realtime and voice-chat): turn_detection, "
    "stt, llm_first_token, first_audio and voice_to_voice", ["stage", "transport"],
    namespace=NAMESPACE, buckets=SECONDS)
TURNS = Counter("turns_total", "Replies finished, by transport and status",
                ["transport", "status"], namespace=NAMESPACE)
TRITON_REQUEST_SECONDS = Histogram(
    "triton_request_seconds", "Triton calls from this process, by model and kind (infer, "
    "batch, stream: until the last response)", ["model", "kind"], namespace=NAMESPACE,
    buckets=SECONDS)
TRITON_ERRORS = Counter("triton_errors_total", "Failed Triton calls, by model and error code",
                        ["model", "code"], namespace=NAMESPACE)
MEMORY_WRITES = Counter("memory_writes_total", "Turns written to conversation memory "
                        "(outcome: ok, failed)", ["outcome"], namespace=NAMESPACE)
RATE_LIMITED = Counter("rate_limit_rejections_total", "Requests refused by a key's limits "
                       "(limit: requests, audio-seconds, realtime-sessions)", ["limit"],
                       namespace=NAMESPACE)
SPECULATIVE_TURNS = Counter(
    "speculative_turns_total", "Turns started at a pause before the turn had ended "
    "(REALTIME_SPECULATE_MS), by outcome: confirmed (the turn ended there, its work went "
    "out) or cancelled (the user went on, cleared the buffer or left: the work was dropped, "
    "its CPU spent)", ["outcome"],
    namespace=NAMESPACE)
WEBRTC_REPLY_FRAME_LATE_SECONDS = Histogram(
    "webrtc_reply_frame_late_seconds", "How late each 20 ms frame of a WebRTC call's reply "
    "track left its slot on the playout clock: the event loop and the CPU's stalls, which a "
    "caller's jitter buffer pays for", namespace=NAMESPACE,
    buckets=(0.002, 0.005, 0.01, 0.02, 0.04, 0.06, 0.1, 0.2, 0.5))
WEBRTC_REPLY_SKIPPED_SECONDS = Counter(
    "webrtc_reply_skipped_seconds_total", "Seconds WebRTC reply tracks' clocks skipped "
    "after stalls (sent as a pause in the stream rather than a burst)", namespace=NAMESPACE)
SHARED_STATE_FALLBACK = Gauge(
    "shared_state_fallback", "1 while REDIS_URL is set and Redis does not answer: this "
    "replica enforces rate limits, realtime session slots and session leases on its own "
    "(0 otherwise, and always 0 without REDIS_URL)", namespace=NAMESPACE)

STAGES = {"turn_detection": "turn_detection_ms", "stt": "stt_ms",
          "llm_first_token": "llm_first_token_ms", "first_audio": "tts_first_audio_ms",
          "voice_to_voice": "voice_to_voice_ms"}
"""Stage label -> field of ``realtime.events.Timings`` / ``VoiceChatTimings``."""


def observe_reply(transport: str, status: str, timings: Any) -> None:
    """Count one finished reply and its stage timings (``None`` fields did not run)."""
    TURNS.labels(transport, status).inc()
    if timings is None:
        return
    for stage, name in STAGES.items():
        value = getattr(timings, name, None)
        if value is not None:
            TURN_STAGE_SECONDS.labels(stage, transport).observe(value / 1000.0)


def prometheus_config() -> PrometheusConfig:
    """Litestar's middleware: requests by route template (not the raw path, whose ids would
    explode the label set), method and status; WebSockets count with method ``websocket``."""
    from litestar.plugins.prometheus import PrometheusConfig

    return PrometheusConfig(app_name=NAMESPACE, prefix=f"{NAMESPACE}_http", group_path=True,
                            exclude_unhandled_paths=True, exclude=["^/metrics$"],
                            buckets=list(SECONDS))


def metrics_controller() -> type:
    """``GET /metrics``: the process registry in Prometheus' text format, without a key
    (scrapers reach pods directly; the Ingress does not route it)."""
    from litestar.plugins.prometheus import PrometheusController

    class MetricsController(PrometheusController):
        path = "/metrics"
        include_in_schema = False
        security = [{}]

    return MetricsController
