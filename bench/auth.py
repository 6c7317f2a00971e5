"""Per-request cost of authentication and rate limiting on a cheap route.

Starts one orchestrator per mode in this process (uvicorn on loopback, each with its own
SQLite file, no models) and times ``GET /api/sessions/{id}`` (one SQL read) over a
kept-alive connection, the modes interleaved round by round so machine drift hits them
alike:

* ``open``: AUTH_MODE=off, no key (no authentication, no limits);
* ``key``: AUTH_MODE=required, a Bearer key, request limit on (the key cache warm);
* ``key-uncached``: the same with AUTH_KEY_CACHE_S=0 (a key lookup in SQL per request).

It also times the middleware's work alone (key check + limiter, in process), which is
the cost without HTTP and SQL noise.
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

MODES: dict[str, dict[str, Any]] = {
    "open": {"auth_mode": "off"},
    "key": {"auth_mode": "required"},
    "key-uncached": {"auth_mode": "required", "auth_key_cache_s": 0.0},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", type=int, default=2000, help="requests per mode")
    parser.add_argument("--rounds", type=int, default=10,
                        help="interleaved rounds the requests are split into")
    add_output(parser)


async def _bench(args: argparse.Namespace, base: Any, work: Path) -> dict[str, Any]:
    import httpx

    from orchestrator.app import create_app

    clients, paths, runtimes = {}, {}, {}
    async with AsyncExitStack() as stack:
        for mode, overrides in MODES.items():
            settings = dataclasses.replace(
                base, database_url=f"sqlite+aiosqlite:///{work / mode}.db",
                data_dir=str(work / mode), triton_url=None, memory_enabled=False,
                stt_enabled=False, llm_enabled=False, tts_enabled=False, host="127.0.0.1",
                rate_limit_requests_per_minute=10**9, **overrides)
            app = create_app(settings)
            url = await stack.enter_async_context(serving(app, access_log=False))
            runtime = runtimes[mode] = app.state.runtime
            headers = {}
            if settings.auth_mode == "required":
                headers["Authorization"] = "Bearer " + (await runtime.keys.create("bench")).secret
            session = await runtime.conversations.create_session("bench")
            clients[mode] = await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, headers=headers))
            paths[mode] = f"/api/sessions/{session.id}"
        latencies = await interleaved_gets({m: (clients[m], paths[m]) for m in MODES},
                                           args.requests, args.rounds)
        middleware = await _middleware_only(runtimes["key"],
                                            clients["key"].headers["Authorization"][7:])
    return {"http_ms": {mode: Summary.of(values).to_json()
                        for mode, values in latencies.items()},
            "middleware_us": middleware}


async def _middleware_only(runtime: Any, secret: str, n: int = 20000) -> dict[str, Any]:
    """Microseconds of the key check (cached) and the limiter per request, in process."""
    auth, limits = runtime.auth, runtime.limits
    await auth.authenticate(secret)  # warm the cache
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        principal = await auth.authenticate(secret)
        limits.request(principal)
        samples.append((time.perf_counter() - started) * 1e6)
    return Summary.of(samples).to_json()


def run(args: argparse.Namespace, settings: Any) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as work:
        results = asyncio.run(_bench(args, settings, Path(work)))
    print(f"GET /api/sessions/{{id}} over loopback, {args.requests} requests per mode, "
          f"{args.rounds} interleaved rounds")
    print(f"{'mode':<14} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for mode, summary in results["http_ms"].items():
        print(f"{mode:<14} {summary['p50']:>8.3f} {summary['p90']:>8.3f} {summary['p99']:>8.3f} "
              f"{summary['mean']:>8.3f}")
    m = results["middleware_us"]
    print(f"key check + limiter in process: p50 {m['p50']:.1f} us, p99 {m['p99']:.1f} us")
    path = write_results(args.out, "auth", {"requests": args.requests,
                                            "rounds": args.rounds}, results)
    print(f"results: {path}")
    return 0
