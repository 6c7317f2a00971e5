"""Sessions and user statistics.

The original served user statistics at ``GET /api/sessions/{user_id}/stats``, which
collides with ``GET /api/sessions/{session_id}/stats``; they live at
``GET /api/users/{user_id}/stats``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from litestar import Controller, get, post
from litestar.params import JSONBody, Parameter

from orchestrator.auth.access import PrincipalDep, check_user, session_user
from orchestrator.dependencies import ConversationsDep, RuntimeDep, SettingsDep
from orchestrator.sessions.schemas import (
    Latencies,
    NewSessionRequest,
    SessionOut,
    SessionStatsOut,
    TurnOut,
    TurnPage,
    UserStatsOut,
)
from orchestrator.speech.dependencies import CatalogueDep
from orchestrator.validation import UserIdPath

SessionId = Annotated[str, Parameter(max_length=64, description="Session id")]
MAX_OFFSET = 2**31 - 1
"""Past any real history, and inside every SQL dialect's integer range."""


class SessionController(Controller):
    path = "/api/sessions"
    tags = ["sessions"]

    @post("/new", name="sessions:create", status_code=201,
          summary="Start a session (creates the user when new)")
    async def create(self, conversations: ConversationsDep, settings: SettingsDep,
                     principal: PrincipalDep, catalogue: CatalogueDep,
                     data: JSONBody[NewSessionRequest | None] = None) -> SessionOut:
        body = data or NewSessionRequest()
        catalogue.check_voice(body.voice)
        catalogue.check_language(body.language)
        session = await conversations.create_session(
            session_user(principal, body.user_id),
            language=body.language or settings.default_language,
            voice=body.voice or settings.default_voice,
            instructions=body.instructions)
        return SessionOut.of(session)

    @get("/{session_id:str}", name="sessions:get", summary="One session")
    async def get_session(self, session_id: SessionId, conversations: ConversationsDep,
                          principal: PrincipalDep) -> SessionOut:
        return SessionOut.of(await conversations.get_session(session_id,
                                                             owner=principal.owner))

    @get("/{session_id:str}/stats", name="sessions:stats", summary="Statistics of one session")
    async def stats(self, session_id: SessionId, conversations: ConversationsDep,
                    principal: PrincipalDep) -> SessionStatsOut:
        s = await conversations.session_stats(session_id, owner=principal.owner)
        end = s.session.ended_at or datetime.now(UTC)
        return SessionStatsOut(
            session_id=s.session.id, user_id=s.session.user_id,
            status="ended" if s.session.ended_at else "active",
            started_at=s.session.started_at, ended_at=s.session.ended_at,
            duration_seconds=round((end - s.session.started_at).total_seconds(), 3),
            turns=s.turns, user_turns=s.user_turns, assistant_turns=s.assistant_turns,
            interrupted_turns=s.interrupted_turns, prompt_tokens=s.prompt_tokens,
            completion_tokens=s.completion_tokens, audio_seconds=s.audio_seconds,
            first_turn_at=s.first_turn_at, last_turn_at=s.last_turn_at,
            average_latency_ms=Latencies.of(s.average_ms))

    @post("/{session_id:str}/end", name="sessions:end", status_code=200,
          summary="End a session (idempotent: ending twice keeps the first end time)")
    async def end(self, session_id: SessionId, conversations: ConversationsDep,
                  principal: PrincipalDep, runtime: RuntimeDep) -> SessionOut:
        """Its open realtime socket closes with 4410; no turn is stored after this."""
        session = await conversations.end_session(session_id, owner=principal.owner)
        await runtime.live_sessions.end(session_id)
        return SessionOut.of(session)

    @get("/{session_id:str}/turns", name="sessions:turns", summary="Conversation history, "
         "oldest first, paginated")
    async def turns(self, session_id: SessionId, conversations: ConversationsDep,
                    principal: PrincipalDep,
                    limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
                    offset: Annotated[int, Parameter(ge=0, le=MAX_OFFSET)] = 0) -> TurnPage:
        rows, total = await conversations.list_turns(session_id, limit=limit, offset=offset,
                                                     owner=principal.owner)
        return TurnPage(session_id=session_id, total=total, limit=limit, offset=offset,
                        has_more=offset + len(rows) < total, data=[TurnOut.of(t) for t in rows])


class UserController(Controller):
    path = "/api/users"
    tags = ["users"]

    @get("/{user_id:str}/stats", name="users:stats", summary="Statistics of one user")
    async def stats(self, user_id: UserIdPath,
                    conversations: ConversationsDep, principal: PrincipalDep) -> UserStatsOut:
        check_user(principal, user_id)
        u = await conversations.user_stats(user_id)
        return UserStatsOut(
            user_id=u.user_id, created_at=u.created_at, sessions=u.sessions,
            active_sessions=u.active_sessions, turns=u.turns, user_turns=u.user_turns,
            assistant_turns=u.assistant_turns, prompt_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens,
            average_turns_per_session=u.average_turns_per_session,
            first_activity_at=u.first_activity_at, last_activity_at=u.last_activity_at,
            average_latency_ms=Latencies.of(u.average_ms))
