"""Command-line options every bench shares, parsed the same way everywhere."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.sweep import DEFAULT_LEVELS, parse_levels


def _levels(text: str) -> tuple[int, ...]:
    try:
        return parse_levels(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_triton_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="Triton gRPC host:port (default: TRITON_URL, else the "
                        "embedded server's 127.0.0.1:TRITON_GRPC_PORT)")


def triton_url(args: argparse.Namespace, settings) -> str:  # type: ignore[no-untyped-def]
    return args.url or settings.triton_url or f"127.0.0.1:{settings.triton_grpc_port}"


def add_sweep(parser: argparse.ArgumentParser, *, requests: int = 200) -> None:
    parser.add_argument("--levels", type=_levels, default=DEFAULT_LEVELS,
                        help="concurrency levels, comma-separated (default 1,4,8,16)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--requests", type=int, default=None,
                      help=f"requests per level (default {requests})")
    size.add_argument("--duration", type=float, default=None,
                      help="seconds per level instead of a request count")
    parser.add_argument("--warmup", type=int, default=2,
                        help="unrecorded requests before each level")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(default_requests=requests)


def sweep_size(args: argparse.Namespace) -> dict:
    """``requests=`` / ``duration_s=`` keyword arguments for :func:`sweep`."""
    if args.duration is not None:
        return {"requests": None, "duration_s": args.duration}
    return {"requests": args.requests or args.default_requests, "duration_s": None}


def add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("bench-results"),
                        help="directory for <bench>.json and PNG plots")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def add_api_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-key", default=None,
                        help="API key for the orchestrator (default: VOICECHAT_API_KEY, else "
                        "ADMIN_API_KEY; none for a service in AUTH_MODE=off). Sessions over "
                        "RATE_LIMIT_REALTIME_SESSIONS need that limit raised (0: none)")


def api_headers(args: argparse.Namespace, settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The Authorization header the bench's HTTP and WebSocket requests carry."""
    import os

    key = args.api_key or os.environ.get("VOICECHAT_API_KEY") or settings.admin_api_key
    return {"Authorization": f"Bearer {key}"} if key else {}


def add_session_options(parser: argparse.ArgumentParser) -> None:
    """Realtime session settings the voice benches send in ``session.update``."""
    parser.add_argument("--turn-detection", choices=("semantic_vad", "server_vad"),
                        default=None, help="the sessions' turn detection (default: the "
                        "server's, REALTIME_TURN_DETECTION)")
    parser.add_argument("--temperature", type=float, default=0.0,
                        help="the sessions' sampling temperature (default 0: the same replies "
                        "every run, so runs compare; the service's default is LLM_TEMPERATURE)")


def session_options(args: argparse.Namespace) -> dict:
    session: dict = {"temperature": args.temperature}
    if args.turn_detection:
        session["turn_detection"] = {"type": args.turn_detection}
    return session
