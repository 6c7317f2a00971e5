"""A MariaDB restart costs only the requests made while it is down (pool pre-ping)."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from litestar.testing import AsyncTestClient

from orchestrator.app import create_app
from storage.migrate import upgrade_async
from tests.support import mariadb
from tests.support.settings import base_settings

pytestmark = [pytest.mark.asyncio, pytest.mark.mariadb]


@pytest.fixture
def private_server(mariadb_admin):
    admin, server = mariadb_admin
    if server is None:
        pytest.skip("TEST_MARIADB_URL points at an external server this test cannot restart")
    return admin, server


async def test_requests_recover_after_restart_and_health_reports_the_outage(
        private_server, tmp_path) -> None:
    admin, server = private_server
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = mariadb.create_database(admin, name)
    await upgrade_async(url)
    settings = dataclasses.replace(base_settings(), database_url=url,
                                   data_dir=str(tmp_path), memory_enabled=False)
    try:
        async with AsyncTestClient(app=create_app(settings)) as client:
            created = (await client.post("/api/sessions/new", json={"user_id": "alice"})).json()
            # Warm the pool so it holds connections that the restart will break.
            for _ in range(3):
                assert (await client.get(f"/api/sessions/{created['session_id']}")).is_success

            server.stop()
            health = await client.get("/api/health")
            assert health.status_code == 503
            assert health.json()["status"] == "down"
            assert health.json()["checks"]["sql"]["status"] == "down"
            r = await client.post("/api/sessions/new", json={"user_id": "alice"})
            assert r.status_code == 503
            assert r.json()["error"]["code"] == "storage_unavailable"

            server.start()
            # No request after the restart fails: stale pooled connections are replaced.
            for _ in range(5):
                r = await client.get(f"/api/sessions/{created['session_id']}")
                assert r.status_code == 200, r.text
            assert (await client.get("/api/health")).json()["status"] == "ok"
            stats = (await client.get("/api/users/alice/stats")).json()
            assert stats["sessions"] == 1  # the write attempted during the outage left nothing
    finally:
        mariadb.drop_database(admin, name)
