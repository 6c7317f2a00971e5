"""The Litestar application: routes, dependencies, error mapping, lifecycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from litestar import Litestar
from litestar._asgi.utils import wrap_in_exception_handler
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.config.cors import CORSConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from orchestrator.auth.access import PRINCIPAL
from orchestrator.auth.middleware import auth_middleware
from orchestrator.bodies import strict_json_body
from orchestrator.dependencies import DEPENDENCIES
from orchestrator.errors import exception_to_response
from orchestrator.middleware import request_id_middleware
from orchestrator.openapi import describe_service, json_bodies, render_plugins
from orchestrator.preflight import DATABASE_ERRORS, database_unreachable
from orchestrator.routes import ROUTE_HANDLERS
from orchestrator.settings import Settings, get_settings
from orchestrator.speech.dependencies import CATALOGUE
from orchestrator.startup import start_runtime
from orchestrator.telemetry.metrics import metrics_controller, prometheus_config
from orchestrator.telemetry.tracing import (
    opentelemetry_plugin,
    route_span_middleware,
    tracing_on,
)
from storage.errors import SchemaMismatch

if TYPE_CHECKING:
    from orchestrator.inference.supervisor import TritonSupervisor

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *,
               triton_supervisor: TritonSupervisor | None = None) -> Litestar:
    """Build the app; clients are created when it starts, not here. ``triton_supervisor``:
    the embedded Triton's keeper, when this process runs one (its state is in health)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            runtime = await start_runtime(settings, triton_supervisor)
        except SchemaMismatch as exc:  # its message says which command to run
            app.state.startup_error = str(exc)
            raise
        except DATABASE_ERRORS as exc:
            # The start-up check passed, then the database went: say so in one line
            # (the server prints startup_error instead of the traceback).
            app.state.startup_error = database_unreachable(settings.sql_url, exc)
            raise
        app.state.runtime = runtime
        log.info("orchestrator started", extra={"sql": runtime.database.dialect,
                                                "triton": settings.triton_url})
        try:
            yield
        finally:
            await runtime.close()

    plugins, assets = render_plugins()
    tracing = [opentelemetry_plugin()] if tracing_on() else []
    metrics = [metrics_controller()] if settings.metrics_enabled else []
    # Middleware errors (a 401 from auth) become responses inside the request-id and
    # metrics layers, so both see the status the client gets.
    middleware = [request_id_middleware, wrap_in_exception_handler, auth_middleware]
    if settings.metrics_enabled:
        middleware.insert(0, prometheus_config().middleware)
    if tracing:
        middleware.insert(0, route_span_middleware)
    app = Litestar(
        route_handlers=[*ROUTE_HANDLERS, *metrics, *([assets] if assets else [])],
        dependencies={**DEPENDENCIES, "principal": PRINCIPAL, "catalogue": CATALOGUE},
        lifespan=[lifespan],
        middleware=middleware,
        before_request=strict_json_body,
        exception_handlers={Exception: exception_to_response},
        request_max_body_size=settings.max_request_bytes,
        cors_config=CORSConfig(allow_origins=settings.cors_origins) if settings.cors_origins
        else None,
        openapi_config=OpenAPIConfig(
            title="Voice chat backend", version="0.1.0", path="/schema",
            render_plugins=plugins,
            components=Components(security_schemes={"apiKey": SecurityScheme(
                type="http", scheme="bearer", description="An API key: `voicechat keys "
                "create --user ID`")}),
            security=[{"apiKey": []}]),
        plugins=tracing,
        logging_config=None,  # logging is ours (orchestrator.logging), JSON with request ids
        debug=False,
    )
    describe_service(app.plugins.get(OpenAPIPlugin).provide_openapi_schema(), json_bodies(app))
    return app
