"""Request and response bodies of the sessions API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from orchestrator.validation import Instructions, Language, UserId, VoiceName
from storage.conversations import LatencySummary, SessionRecord, TurnRecord


class NewSessionRequest(msgspec.Struct, forbid_unknown_fields=True):
    """All fields optional: ``curl -X POST /api/sessions/new`` with no body works."""

    user_id: UserId | None = None
    """Existing or new user; a random id is assigned when absent."""
    language: Language | None = None
    voice: VoiceName | None = None
    instructions: Instructions | None = None


class SessionOut(msgspec.Struct):
    session_id: str
    user_id: str
    language: str | None
    voice: str | None
    instructions: str | None
    started_at: datetime
    ended_at: datetime | None
    status: Literal["active", "ended"]
    websocket_path: str

    @classmethod
    def of(cls, s: SessionRecord) -> SessionOut:
        return cls(session_id=s.id, user_id=s.user_id, language=s.language, voice=s.voice,
                   instructions=s.instructions, started_at=s.started_at, ended_at=s.ended_at,
                   status="ended" if s.ended_at else "active",
                   websocket_path=f"/ws/{s.user_id}/{s.id}")


class Latencies(msgspec.Struct):
    """Average milliseconds per stage (null when no turn recorded that stage)."""

    stt_ms: float | None
    llm_first_token_ms: float | None
    llm_total_ms: float | None
    tts_first_audio_ms: float | None
    tts_total_ms: float | None
    voice_to_voice_ms: float | None

    @classmethod
    def of(cls, s: LatencySummary) -> Latencies:
        return cls(**{f: getattr(s, f) for f in cls.__struct_fields__})


class SessionStatsOut(msgspec.Struct):
    session_id: str
    user_id: str
    status: Literal["active", "ended"]
    started_at: datetime
    ended_at: datetime | None
    duration_seconds: float
    turns: int
    user_turns: int
    assistant_turns: int
    interrupted_turns: int
    prompt_tokens: int
    completion_tokens: int
    audio_seconds: float
    first_turn_at: datetime | None
    last_turn_at: datetime | None
    average_latency_ms: Latencies


class UserStatsOut(msgspec.Struct):
    user_id: str
    created_at: datetime
    sessions: int
    active_sessions: int
    turns: int
    user_turns: int
    assistant_turns: int
    prompt_tokens: int
    completion_tokens: int
    average_turns_per_session: float
    first_activity_at: datetime | None
    last_activity_at: datetime | None
    average_latency_ms: Latencies


class ToolCallRecord(msgspec.Struct):
    call_id: str
    name: str
    arguments: str
    """JSON text, as the model wrote it."""


class TurnOut(msgspec.Struct):
    id: int
    role: str
    text: str
    language: str | None
    audio_path: str | None
    audio_duration_ms: float | None
    interrupted: bool
    created_at: datetime
    timings_ms: Latencies
    prompt_tokens: int | None
    completion_tokens: int | None
    tool_calls: list[ToolCallRecord] | None = None
    """An assistant turn's function calls (realtime function calling)."""
    tool_call_id: str | None = None
    """A ``tool`` turn: the call whose output ``text`` holds."""
    incomplete_reason: str | None = None
    """An assistant reply stopped before the model finished it: ``max_output_tokens`` (its
    token limit), ``repetition`` (a loop was stopped) or ``error`` (inference failed
    mid-reply; the text is what reached the user)."""

    @classmethod
    def of(cls, t: TurnRecord) -> TurnOut:
        return cls(id=t.id, role=t.role, text=t.text, language=t.language,
                   audio_path=t.audio_path, audio_duration_ms=t.audio_duration_ms,
                   interrupted=t.interrupted, created_at=t.created_at,
                   timings_ms=Latencies(t.stt_ms, t.llm_first_token_ms, t.llm_total_ms,
                                        t.tts_first_audio_ms, t.tts_total_ms,
                                        t.voice_to_voice_ms),
                   prompt_tokens=t.prompt_tokens, completion_tokens=t.completion_tokens,
                   tool_calls=[ToolCallRecord(c["call_id"], c["name"], c["arguments"])
                               for c in t.tool_calls] if t.tool_calls else None,
                   tool_call_id=t.tool_call_id, incomplete_reason=t.incomplete_reason)


class TurnPage(msgspec.Struct):
    session_id: str
    total: int
    limit: int
    offset: int
    has_more: bool
    data: list[TurnOut]
