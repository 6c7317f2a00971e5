"""Model administration endpoints, for admin keys only.

An admin key is ADMIN_API_KEY or one made with ``voicechat keys create --admin``, sent as
``Authorization: Bearer <key>`` (or ``X-Admin-Key: <key>``). A missing or wrong key
answers 401, a user's key 403.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromQuery, Parameter

from orchestrator.auth.access import principal_of, require_admin
from orchestrator.dependencies import service_unavailable
from orchestrator.errors import ServiceDisabled
from orchestrator.models.schemas import GcResult, ModelList, ModelOut, ValidationReport
from orchestrator.models.service import ModelAdmin
from orchestrator.runtime import Runtime

ModelName = Annotated[str, Parameter(max_length=64, description="Model name, e.g. stt")]
Version = Annotated[int, Parameter(ge=1, le=2**31 - 1, description="Version number")]
AdminDep = NamedDependency[ModelAdmin]


def provide_admin(state: State) -> ModelAdmin:
    """Model administration, or a 503 saying why it is off (it needs Triton)."""
    runtime: Runtime = state.runtime
    if runtime.services.models is None:
        raise service_unavailable(runtime.settings, None, "model administration")
    return runtime.services.models


def admin_key_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    require_admin(principal_of(connection))
    if connection.app.state.runtime.services.models is None:
        raise ServiceDisabled("model administration needs Triton (TRITON_URL or the embedded "
                              "server)")


class ModelAdminController(Controller):
    path = "/admin/models"
    tags = ["model administration"]
    guards = [admin_key_guard]
    dependencies = {"admin": Provide(provide_admin, sync_to_thread=False)}

    @get("/", name="models:list", summary="Models with their versions, Triton state and "
         "manifests")
    async def list_models(self, admin: AdminDep) -> ModelList:
        return ModelList(data=await admin.list_models())

    @get("/{model:str}", name="models:get", summary="One model")
    async def get_model(self, model: ModelName, admin: AdminDep) -> ModelOut:
        return await admin.describe(model)

    @post("/{model:str}/versions/{version:int}/load", name="models:load", status_code=200,
          summary="Load a version beside the served one (for pinned requests, model:N)")
    async def load(self, model: ModelName, version: Version, admin: AdminDep) -> ModelOut:
        return await admin.load(model, version)

    @post("/{model:str}/versions/{version:int}/unload", name="models:unload", status_code=200,
          summary="Unload a version that is not served")
    async def unload(self, model: ModelName, version: Version, admin: AdminDep) -> ModelOut:
        return await admin.unload(model, version)

    @post("/{model:str}/versions/{version:int}/validate", name="models:validate",
          status_code=200, summary="Check files, ONNX, parity, config and a smoke inference")
    async def validate(self, model: ModelName, version: Version,
                       admin: AdminDep) -> ValidationReport:
        return await admin.validate(model, version)

    @post("/{model:str}/versions/{version:int}/promote", name="models:promote",
          status_code=200, summary="Validate, then serve this version (no failed requests); "
          "409 when refused")
    async def promote(self, model: ModelName, version: Version, admin: AdminDep) -> ModelOut:
        return await admin.promote(model, version)

    @post("/{model:str}/rollback", name="models:rollback", status_code=200,
          summary="Serve the previously served version again")
    async def rollback(self, model: ModelName, admin: AdminDep) -> ModelOut:
        return await admin.rollback(model)

    @post("/{model:str}/gc", name="models:gc", status_code=200,
          summary="Remove old unserved versions (dry run unless dry_run=false)")
    async def gc(self, model: ModelName, admin: AdminDep,
                 dry_run: FromQuery[bool] = True) -> GcResult:
        return await admin.gc(model, dry_run=dry_run)
