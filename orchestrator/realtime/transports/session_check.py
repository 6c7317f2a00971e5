"""A realtime session configuration checked before any connection exists: what a
``session.update`` on ``/v1/realtime`` goes through, for a client secret being minted and
a WebRTC call being answered, so a bad one is a 400 of that request."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from orchestrator.errors import AppError, InvalidRequest
from orchestrator.realtime.config import changes_of, check_offered, initial_config
from orchestrator.realtime.mcp import check_mcp, public
from orchestrator.realtime.protocol.openai import ClientTranslator, Dialect
from orchestrator.realtime.protocol.openai_server import ServerTranslator
from orchestrator.realtime.reply.tools import check_tools
from orchestrator.realtime.transports.openai import LLM_MODEL, llm_version
from orchestrator.realtime.turns.denoise import check_available as check_denoiser
from orchestrator.realtime.wiring import voice_ports
from orchestrator.runtime import Runtime
from storage.conversations import SessionRecord


class CheckedSession(msgspec.Struct, frozen=True):
    model: str
    update: dict[str, Any]
    """The ``session.update`` fields in the engine's shape (what the connection applies)."""
    applied: dict[str, Any]
    """The whole configuration a new session gets, in the request's protocol."""


def check_session(runtime: Runtime, fields: dict[str, Any], dialect: Dialect,
                  user_id: str) -> CheckedSession:
    """``fields`` through what a ``session.update`` on ``/v1/realtime`` goes through."""
    model = fields.get("model") or LLM_MODEL
    if not isinstance(model, str):
        raise InvalidRequest("session.model must be a string", param="session.model")
    try:
        version = llm_version(model)
    except AppError as exc:  # here a body field, so a 400 (the query's is a 404)
        raise InvalidRequest(exc.message, param="session.model") from None
    event = ClientTranslator(dialect, model=model)(
        msgspec.json.encode({"type": "session.update", "session": fields}).decode())
    changes = changes_of(event.session)
    ports = voice_ports(runtime)
    check_offered(ports, changes)
    if changes.get("noise_reduction") is not None:
        check_denoiser(runtime.settings.denoise_model_path)
    if ports.llm is not None and ("tools" in changes or "tool_choice" in changes):
        check_tools(ports.llm, version, changes.get("tools"), changes.get("tool_choice"),
                    "session")
    if "mcp_tools" in changes:  # their headers go to the MCP server, never back
        if ports.llm is not None:
            check_mcp(ports.llm, version, changes["mcp_tools"])
        changes["mcp_tools"] = [public(tool) for tool in changes["mcp_tools"]]
    now = datetime.now(UTC)
    record = SessionRecord(id="", user_id=user_id, language=None, voice=None,
                           instructions=None, started_at=now, ended_at=None)
    config = msgspec.structs.replace(
        initial_config(record, runtime.settings, has_tts=ports.tts is not None), **changes)
    applied = ServerTranslator(dialect, model=model, config=lambda: config).session(config)
    applied.pop("id")  # no session exists until the secret is used
    return CheckedSession(model=model, update=msgspec.to_builtins(event.session),
                          applied=applied)
