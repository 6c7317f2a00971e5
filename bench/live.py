"""An app under a real uvicorn server on a free loopback port, in the caller's event loop
(benches that start their own service, and the test suite's live servers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


@asynccontextmanager
async def serving(app: Any, drain_timeout_s: float = 20.0, **config: Any) -> AsyncIterator[str]:
    """Serve ``app`` until the block ends; yields its ``http://127.0.0.1:PORT``. The server
    (``orchestrator.serving``) is left in ``app.state.server``: tests drain it as SIGTERM
    would."""
    from orchestrator.serving import server as draining_server

    server = draining_server(app, drain_timeout_s=drain_timeout_s, host="127.0.0.1", port=0,
                             **config)
    app.state.server = server
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # start-up failed: raise its error
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def interleaved_gets(targets: dict[str, tuple[Any, str]], requests: int, rounds: int,
                           warmup: int = 50) -> dict[str, list[float]]:
    """Milliseconds of ``GET path`` per mode, ``targets``: mode -> (httpx client, path).
    The modes take turns round by round, so machine drift hits them alike; each is warmed
    first (connections, caches, SQLite pages)."""
    import time

    for client, path in targets.values():
        for _ in range(warmup):
            (await client.get(path)).raise_for_status()
    latencies: dict[str, list[float]] = {mode: [] for mode in targets}
    per_round = max(1, requests // rounds)
    for _ in range(rounds):
        for mode, (client, path) in targets.items():
            for _ in range(per_round):
                started = time.perf_counter()
                response = await client.get(path)
                latencies[mode].append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
    return latencies
