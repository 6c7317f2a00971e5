"""Orchestrator replicas for the e2e tests: a MariaDB database of their own, and N
``voicechat serve`` processes on it with one admin key, each ready."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from storage.migrate import upgrade
from tests.support import mariadb

ADMIN = "replica-admin-key-0123456789abcdef"


@pytest.fixture
def database(mariadb_admin):  # type: ignore[no-untyped-def]
    """A new, migrated database the replicas share (dropped after the test)."""
    admin, _ = mariadb_admin
    name = f"replicas_{uuid.uuid4().hex[:10]}"
    url = mariadb.create_database(admin, name)
    upgrade(url)
    yield url
    mariadb.drop_database(admin, name)


def start_replicas(tmp_path: Path, count: int, **env: str) -> list[tuple[object, str, Path]]:
    """``count`` orchestrator processes, ready: (process, base URL, log file) each."""
    # imported here: this module is a conftest plugin, loaded before the test modules,
    # and a test module imported that early escapes pytest's assertion rewriting
    from tests.e2e.test_serve import serve, wait_for

    started = []
    for i in range(count):
        log = tmp_path / f"replica-{i}.log"
        (tmp_path / f"r{i}").mkdir(parents=True)
        proc, port = serve(tmp_path / f"r{i}", log, AUTH_MODE="required", ADMIN_API_KEY=ADMIN,
                           **env)
        started.append((proc, f"http://127.0.0.1:{port}", log))
    for _, base, _ in started:
        wait_for(f"{base}/readyz", timeout_s=180)
    return started


async def text_turn(ws, text: str) -> dict:  # type: ignore[no-untyped-def]
    """A typed user turn and its reply on a realtime socket: ``response.done`` or ``error``."""
    await ws.send(json.dumps({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}}))
    await ws.send(json.dumps({"type": "response.create"}))
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), 120))
        if event["type"] in ("response.done", "error"):
            return event
