"""An app with AUTH_MODE=required on each SQL backend, and keys for two users."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from orchestrator.settings import Settings
from tests.support.settings import NO_REPOSITORY

ADMIN_KEY = "bootstrap-admin-key-for-tests"


def required_settings(sql_url: str, tmp_path: Path, **overrides: object) -> Settings:
    return dataclasses.replace(
        Settings.from_env({"MODEL_REPOSITORY": NO_REPOSITORY}), database_url=sql_url,
        data_dir=str(tmp_path / "data"),
        **{"triton_url": None, "memory_enabled": False, "log_format": "text",
           "admin_api_key": ADMIN_KEY, **overrides})


@dataclass
class Keys:
    alice: str
    bob: str
    admin: str
    """An admin key from the database (not the bootstrap one)."""

    @staticmethod
    def bearer(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


async def make_key(client: AsyncTestClient, user_id: str, admin: bool = False) -> dict:
    r = await client.post("/admin/keys", json={"user_id": user_id, "admin": admin,
                                               "name": f"{user_id} test key"},
                          headers=Keys.bearer(ADMIN_KEY))
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
async def api(sql_url: str, tmp_path: Path) -> AsyncIterator[AsyncTestClient]:
    from orchestrator.app import create_app

    async with AsyncTestClient(app=create_app(required_settings(sql_url, tmp_path))) as c:
        yield c


@pytest.fixture
async def keys(api: AsyncTestClient) -> Keys:
    return Keys(alice=(await make_key(api, "alice"))["key"],
                bob=(await make_key(api, "bob"))["key"],
                admin=(await make_key(api, "ops", admin=True))["key"])
