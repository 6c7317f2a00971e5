"""The Triton channel's keepalive against what Triton's server permits.

Triton's gRPC server keeps gRPC core's ping policy unless started with
``--grpc-http2-min-recv-ping-interval-without-data`` / ``--grpc-keepalive-*``: pings
without data more often than every 5 minutes draw ``GOAWAY ENHANCE_YOUR_CALM
too_many_pings``. Neither the embedded server nor the compose/Kubernetes files change it,
so the client must not ping more often.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.inference.client import channel_args

ROOT = Path(__file__).resolve().parents[2]
TRITON_MIN_PING_INTERVAL_MS = 300_000


def test_the_triton_channel_pings_no_more_often_than_triton_allows() -> None:
    args = dict(channel_args())
    assert args["grpc.keepalive_time_ms"] >= TRITON_MIN_PING_INTERVAL_MS
    assert not args["grpc.keepalive_permit_without_calls"]


def test_no_deployment_changes_tritons_ping_policy() -> None:
    """Were one to, the bound above would have to follow it."""
    files = [ROOT / "docker-compose.yml", *ROOT.glob("docker/*"), *ROOT.glob("deploy/**/*.y*ml"),
             ROOT / "orchestrator" / "inference" / "server.py"]
    for path in files:
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert "grpc-keepalive" not in text and "min-recv-ping" not in text, path
