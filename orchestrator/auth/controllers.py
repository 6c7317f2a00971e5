"""``/admin/keys``: create, list, show and revoke API keys (admin keys only)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromQuery, JSONBody, Parameter

from orchestrator.auth.access import principal_of, require_admin
from orchestrator.auth.schemas import KeyCreated, KeyList, KeyOut, NewKeyRequest
from orchestrator.dependencies import RuntimeDep
from orchestrator.validation import UserId

KeyId = Annotated[str, Parameter(max_length=32, description="Key id, e.g. key_0123abcd…")]


def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    require_admin(principal_of(connection))


class KeyAdminController(Controller):
    path = "/admin/keys"
    tags = ["access"]
    guards = [admin_guard]

    @post("/", name="keys:create", status_code=201,
          summary="Create an API key for a user; the secret is in this response only")
    async def create(self, data: JSONBody[NewKeyRequest], runtime: RuntimeDep) -> KeyCreated:
        new = await runtime.keys.create(data.user_id, name=data.name, admin=data.admin)
        return KeyCreated(**msgspec.structs.asdict(KeyOut.of(new.record)), key=new.secret)

    @get("/", name="keys:list", summary="API keys (of one user with user_id), oldest first")
    async def list_keys(self, runtime: RuntimeDep,
                        user_id: FromQuery[UserId | None] = None) -> KeyList:
        return KeyList(data=[KeyOut.of(r) for r in await runtime.keys.list(user_id)])

    @get("/{key_id:str}", name="keys:get", summary="One API key")
    async def get_key(self, key_id: KeyId, runtime: RuntimeDep) -> KeyOut:
        return KeyOut.of(await runtime.keys.get(key_id))

    @delete("/{key_id:str}", name="keys:revoke", status_code=200,
            summary="Revoke an API key (idempotent); it stops working at once here (on "
                    "every replica with REDIS_URL)")
    async def revoke(self, key_id: KeyId, runtime: RuntimeDep) -> KeyOut:
        record = await runtime.keys.revoke(key_id)
        await runtime.auth.revoked(key_id)
        return KeyOut.of(record)

