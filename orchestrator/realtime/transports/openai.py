"""``WS /v1/realtime``: OpenAI's Realtime API (:mod:`..protocol.openai`), for the official
SDKs. ``?model=`` picks the LLM (``llm``, ``llm:N``; OpenAI's realtime model names mean
the promoted ``llm``), the user is the key's (an admin key or open access may name one
with ``?user_id=``), and each connection starts a new stored session unless
``?session_id=`` continues one of the user's."""

from __future__ import annotations

from litestar import WebSocket, websocket
from litestar.params import FromQuery

from orchestrator.auth.access import principal_of
from orchestrator.auth.middleware import answer_subprotocol
from orchestrator.auth.principal import Principal
from orchestrator.errors import AppError, Forbidden, InvalidRequest, NotFound
from orchestrator.models.refs import version_for
from orchestrator.realtime.protocol.openai import ClientTranslator, dialect_of
from orchestrator.realtime.protocol.openai_server import ServerTranslator
from orchestrator.realtime.transports.base import EventCodec, serve_session
from orchestrator.realtime.transports.grants import first_events
from orchestrator.realtime.transports.socket import SocketTransport
from orchestrator.runtime import Runtime
from storage.conversations import SessionRecord
from storage.errors import RecordNotFound

LLM_MODEL = "llm"


@websocket("/v1/realtime", name="realtime:openai")
async def openai_realtime(socket: WebSocket, model: FromQuery[str] = "llm",
                          session_id: FromQuery[str | None] = None,
                          user_id: FromQuery[str | None] = None,
                          intent: FromQuery[str | None] = None) -> None:
    runtime = socket.app.state.runtime
    principal = principal_of(socket)
    await socket.accept(subprotocols=answer_subprotocol(socket.scope))
    transport = SocketTransport(socket)
    try:
        if intent not in (None, "transcription"):
            raise InvalidRequest(f"intent {intent[:40]!r} is not known; use "
                                 "intent=transcription or leave it out", param="intent")
        version = llm_version(model)
        record = await openai_session(runtime, principal, session_id, user_id)
    except AppError as exc:
        await transport.refuse(exc)  # 4404, 4403, else 4400 (a bad query parameter)
        return
    dialect = dialect_of(socket.headers)
    codec = EventCodec(
        decode_event=ClientTranslator(dialect, model=model),
        server_events=lambda config: ServerTranslator(
            dialect, model=model, config=config,
            rate_limits=lambda: runtime.limits.realtime_limits(principal)),
        llm_version=version, name="openai")
    opening = [transcription_intent(dialect)] if intent == "transcription" else []
    await serve_session(transport, runtime, principal, record, codec,
                        first_events=opening + first_events(principal, dialect))


def transcription_intent(dialect: str) -> str:
    """``?intent=transcription``: the session starts as a transcription session, as if the
    client's first event had made it one (it sees that update answered)."""
    if dialect == "beta":
        return '{"type": "transcription_session.update", "session": {}}'
    return '{"type": "session.update", "session": {"type": "transcription"}}'


def llm_version(model: str) -> str:
    """``?model=``: ``llm`` or ``llm:N``; OpenAI's realtime model names mean the promoted
    ``llm``; another served model's name is a 404."""
    return version_for(model, LLM_MODEL, openai_names=("gpt-", "o1-", "o3-", "o4-"))


async def openai_session(runtime: Runtime, principal: Principal, session_id: str | None,
                          user_id: str | None) -> SessionRecord:
    if user_id is not None and not principal.can_act_for(user_id):
        raise Forbidden(f"this key does not act for user {user_id!r}", param="user_id")
    if session_id is None:  # with the defaults POST /api/sessions/new gives a session
        settings = runtime.settings
        return await runtime.conversations.create_session(
            user_id or principal.owner, language=settings.default_language,
            voice=settings.default_voice)
    try:
        record = await runtime.conversations.get_session(session_id, owner=principal.owner)
    except RecordNotFound:
        raise NotFound(f"session {session_id!r} not found", param="session_id") from None
    if user_id is not None and record.user_id != user_id:
        raise Forbidden(f"session {session_id!r} belongs to another user", param="session_id")
    return record
