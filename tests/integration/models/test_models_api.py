"""Admin REST endpoints over a real Triton: the key guard, listing, promote, refusal."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from export.repository import ModelRepository
from orchestrator.settings import Settings
from tests.support import echo

pytestmark = [pytest.mark.triton, pytest.mark.asyncio]

MODEL = "echo_api"
KEY = "s3cret-admin-key"


@pytest.fixture(scope="module")
def repository(triton_server) -> ModelRepository:  # type: ignore[no-untyped-def]
    return echo.two_versions(triton_server.repository, MODEL)


def admin_settings(tmp_path: Path, triton_server, key: str | None) -> Settings:  # type: ignore[no-untyped-def]
    base = Settings.from_env({})
    return dataclasses.replace(
        base, database_url=f"sqlite+aiosqlite:///{tmp_path / 'api.db'}",
        data_dir=str(tmp_path / "data"), triton_url=triton_server.grpc_url,
        model_repository=str(triton_server.repository), memory_enabled=False,
        stt_enabled=False, llm_enabled=False, tts_enabled=False, log_format="text",
        admin_api_key=key, model_swap_grace_s=0.2, model_pin_refresh_s=0.1)


@pytest.fixture
async def api(tmp_path, triton_server, repository) -> AsyncIterator[AsyncTestClient]:  # type: ignore[no-untyped-def]
    from orchestrator.app import create_app

    app = create_app(admin_settings(tmp_path, triton_server, KEY))
    async with AsyncTestClient(app=app) as c:
        yield c


ADMIN = {"X-Admin-Key": KEY}


async def test_wrong_or_missing_key_is_401(api):
    for headers in ({}, {"X-Admin-Key": "nope"}, {"Authorization": "Bearer nope"},
                    {"Authorization": f"Basic {KEY}"}):
        r = await api.get("/admin/models", headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["error"]["code"] == "unauthorized"
    r = await api.post(f"/admin/models/{MODEL}/versions/1/promote")
    assert r.status_code == 401


async def test_database_admin_keys_work_without_admin_api_key(tmp_path, triton_server,
                                                            repository):
    from orchestrator.app import create_app

    async with AsyncTestClient(app=create_app(admin_settings(tmp_path, triton_server,
                                                             None))) as c:
        from storage.api_keys import KeyStore
        from storage.database import Database

        database = Database(c.app.state.runtime.settings.sql_url)  # this test's event loop
        keys = KeyStore(database)
        admin = (await keys.create("ops", admin=True)).secret
        user = (await keys.create("alice")).secret
        await database.close()
        r = await c.get("/admin/models", headers=ADMIN)  # no bootstrap key configured
        assert r.status_code == 401
        r = await c.get("/admin/models", headers={"Authorization": f"Bearer {user}"})
        assert r.status_code == 403
        assert r.json()["error"] == {
            "code": "forbidden", "type": "permission_error", "param": None,
            "message": "this API key is not an admin key",
            "request_id": r.headers["x-request-id"]}
        r = await c.get("/admin/models", headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 200, r.text
        assert MODEL in {m["name"] for m in r.json()["data"]}


async def test_promote_list_rollback_and_refusal(api, repository):
    ids = {v: repository.manifest(MODEL, v).id for v in (1, 2)}
    r = await api.post(f"/admin/models/{MODEL}/versions/1/promote",
                       headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200, r.text
    assert r.json()["served"] == 1

    r = await api.get("/admin/models", headers=ADMIN)
    assert r.status_code == 200
    listed = {m["name"]: m for m in r.json()["data"]}[MODEL]
    assert [(v["version"], v["state"], v["served"], v["manifest_id"])
            for v in listed["versions"]] == [(1, "READY", True, ids[1]),
                                             (2, "UNAVAILABLE", False, ids[2])]

    r = await api.post(f"/admin/models/{MODEL}/versions/2/validate", headers=ADMIN)
    assert r.status_code == 200 and r.json()["ok"] is True

    r = await api.post(f"/admin/models/{MODEL}/versions/2/promote", headers=ADMIN)
    assert r.status_code == 200 and r.json()["served"] == 2
    assert r.json()["rollback_to"] == 1

    broken = echo.export_echo(repository, MODEL, 3.0)
    echo.break_version(repository, MODEL, broken, "failed_parity")
    try:
        r = await api.post(f"/admin/models/{MODEL}/versions/{broken}/validate", headers=ADMIN)
        assert r.status_code == 200 and r.json()["ok"] is False
        assert {c["name"]: c["passed"] for c in r.json()["checks"]}["parity"] is False
        r = await api.post(f"/admin/models/{MODEL}/versions/{broken}/promote", headers=ADMIN)
        assert r.status_code == 409
        assert r.json()["error"]["message"] == (
            f"{MODEL} version 3 is refused, version 2 stays served: parity: parity failed "
            "at export: offset=0.5 (tolerance 1e-06)")
    finally:
        echo.remove_version(repository, MODEL, broken)

    r = await api.post(f"/admin/models/{MODEL}/rollback", headers=ADMIN)
    assert r.status_code == 200 and r.json()["served"] == 1
    r = await api.post(f"/admin/models/{MODEL}/rollback", headers=ADMIN)
    assert r.status_code == 409
    assert "no previous served version" in r.json()["error"]["message"]

    r = await api.post(f"/admin/models/{MODEL}/gc", headers=ADMIN)
    assert r.status_code == 200
    assert r.json() == {"model": MODEL, "dry_run": True, "removed": [], "kept": [1, 2]}

    r = await api.get("/admin/models/nope", headers=ADMIN)
    assert r.status_code == 404
    r = await api.post(f"/admin/models/{MODEL}/versions/0/load", headers=ADMIN)
    assert r.status_code == 400
