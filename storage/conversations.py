"""Users, sessions and turns: the conversation store (SQL is the source of truth)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.database import Database
from storage.errors import RecordNotFound, SessionEnded
from storage.tables import Session, Turn, User, utcnow


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    user_id: str
    language: str | None
    voice: str | None
    instructions: str | None
    started_at: datetime
    ended_at: datetime | None

    @classmethod
    def of(cls, row: Session) -> SessionRecord:
        return cls(row.id, row.user_id, row.language, row.voice, row.instructions,
                   row.started_at, row.ended_at)


@dataclass(frozen=True, slots=True)
class TurnRecord:
    id: int
    session_id: str
    user_id: str
    role: str
    text: str
    language: str | None
    audio_path: str | None
    audio_duration_ms: float | None
    stt_ms: float | None
    llm_first_token_ms: float | None
    llm_total_ms: float | None
    tts_first_audio_ms: float | None
    tts_total_ms: float | None
    voice_to_voice_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    interrupted: bool
    created_at: datetime
    tool_calls: list[dict] | None = None
    tool_call_id: str | None = None
    incomplete_reason: str | None = None

    @classmethod
    def of(cls, row: Turn) -> TurnRecord:
        return cls(**{name: getattr(row, name) for name in cls.__slots__})


@dataclass(slots=True)
class NewTurn:
    """What a caller knows about a turn it wants stored."""

    role: str
    text: str
    language: str | None = None
    audio_path: str | None = None
    audio_duration_ms: float | None = None
    stt_ms: float | None = None
    llm_first_token_ms: float | None = None
    llm_total_ms: float | None = None
    tts_first_audio_ms: float | None = None
    tts_total_ms: float | None = None
    voice_to_voice_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    interrupted: bool = False
    incomplete_reason: str | None = None
    """An assistant reply stopped before the model finished it (``max_output_tokens``,
    ``repetition``)."""
    tool_calls: list[dict] | None = None
    """Function calls the assistant made (``{"call_id", "name", "arguments", "item_id"}``)."""
    tool_call_id: str | None = None
    """For a ``tool`` turn: the call whose output ``text`` is."""


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Average milliseconds of each stage over the turns that recorded it."""

    stt_ms: float | None = None
    llm_first_token_ms: float | None = None
    llm_total_ms: float | None = None
    tts_first_audio_ms: float | None = None
    tts_total_ms: float | None = None
    voice_to_voice_ms: float | None = None


@dataclass(frozen=True, slots=True)
class SessionStats:
    session: SessionRecord
    turns: int
    user_turns: int
    assistant_turns: int
    interrupted_turns: int
    prompt_tokens: int
    completion_tokens: int
    audio_seconds: float
    first_turn_at: datetime | None
    last_turn_at: datetime | None
    average_ms: LatencySummary = field(default_factory=LatencySummary)


@dataclass(frozen=True, slots=True)
class UserStats:
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
    average_ms: LatencySummary = field(default_factory=LatencySummary)


_TIMINGS = ("stt_ms", "llm_first_token_ms", "llm_total_ms", "tts_first_audio_ms",
            "tts_total_ms", "voice_to_voice_ms")


def _latency_columns() -> list:
    return [func.avg(getattr(Turn, name)).label(name) for name in _TIMINGS]


def _latency(row) -> LatencySummary:  # type: ignore[no-untyped-def]
    return LatencySummary(**{name: (round(float(v), 3) if (v := getattr(row, name)) is not None
                                    else None) for name in _TIMINGS})


class ConversationStore:
    """Repository over the SQL tables. Every method is one transaction."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def create_session(self, user_id: str | None, *, language: str | None = None,
                             voice: str | None = None, instructions: str | None = None,
                             session_id: str | None = None) -> SessionRecord:
        """A new session; the user is created on first sight."""
        user_id = user_id or uuid.uuid4().hex
        async with self.db.session() as s:
            now = utcnow()
            user = await user_row(s, user_id, now)
            user.last_seen_at = now
            row = Session(id=session_id or uuid.uuid4().hex, user_id=user_id, language=language,
                          voice=voice, instructions=instructions, started_at=now)
            s.add(row)
            await s.flush()
            return SessionRecord.of(row)

    async def get_session(self, session_id: str, *, owner: str | None = None) -> SessionRecord:
        """The session; ``owner`` set: only when it is that user's (else not found)."""
        async with self.db.session() as s:
            return SessionRecord.of(await _session_row(s, session_id, owner))

    async def update_session(self, session_id: str, **fields: str | None) -> SessionRecord:
        allowed = {"language", "voice", "instructions"}
        if set(fields) - allowed:
            raise ValueError(f"cannot update {sorted(set(fields) - allowed)}")
        async with self.db.session() as s:
            row = await _session_row(s, session_id)
            for key, value in fields.items():
                setattr(row, key, value)
            return SessionRecord.of(row)

    async def end_session(self, session_id: str, *, owner: str | None = None) -> SessionRecord:
        """Mark ended; ending twice keeps the first end time (idempotent)."""
        async with self.db.session() as s:
            row = await _session_row(s, session_id, owner)
            if row.ended_at is None:
                row.ended_at = utcnow()
            return SessionRecord.of(row)

    async def add_turn(self, session_id: str, turn: NewTurn) -> TurnRecord:
        async with self.db.session() as s:
            # Locked, so an end_session running now is ordered before or after this turn.
            session = await s.get(Session, session_id, with_for_update=True)
            if session is None:
                raise RecordNotFound(f"session {session_id!r} not found")
            if session.ended_at is not None:
                raise SessionEnded(f"session {session_id!r} has ended; it takes no more turns")
            row = Turn(session_id=session_id, user_id=session.user_id, created_at=utcnow(),
                       **{k: getattr(turn, k) for k in NewTurn.__slots__})
            s.add(row)
            await s.execute(update(User).where(User.id == session.user_id)
                            .values(last_seen_at=row.created_at))
            await s.flush()
            return TurnRecord.of(row)

    async def truncate_turn(self, turn_id: int, text: str) -> TurnRecord:
        """Replace a turn's text with what was actually heard and mark it interrupted
        (realtime ``conversation.item.truncate``)."""
        async with self.db.session() as s:
            row = await s.get(Turn, turn_id)
            if row is None:
                raise RecordNotFound(f"turn {turn_id} not found")
            row.text = text
            row.interrupted = True
            await s.flush()
            return TurnRecord.of(row)

    async def delete_turn(self, session_id: str, turn_id: int) -> None:
        """Remove one turn of a session (realtime ``conversation.item.delete``)."""
        async with self.db.session() as s:
            row = await s.get(Turn, turn_id)
            if row is None or row.session_id != session_id:
                raise RecordNotFound(f"turn {turn_id} not found")
            await s.delete(row)
            await s.flush()

    async def list_turns(self, session_id: str, *, limit: int = 50, offset: int = 0,
                         owner: str | None = None) -> tuple[list[TurnRecord], int]:
        """A page of a session's turns, oldest first, and the session's total turn count."""
        async with self.db.session() as s:
            await _session_row(s, session_id, owner)
            total = await s.scalar(select(func.count()).select_from(Turn)
                                   .where(Turn.session_id == session_id))
            rows = await s.scalars(select(Turn).where(Turn.session_id == session_id)
                                   .order_by(Turn.id).limit(limit).offset(offset))
            return [TurnRecord.of(r) for r in rows], int(total or 0)

    async def recent_turns(self, session_id: str, limit: int = 50) -> list[TurnRecord]:
        """The last ``limit`` turns of a session, oldest first (for prompt building)."""
        async with self.db.session() as s:
            rows = await s.scalars(select(Turn).where(Turn.session_id == session_id)
                                   .order_by(Turn.id.desc()).limit(limit))
            return [TurnRecord.of(r) for r in reversed(list(rows))]

    async def get_turn(self, turn_id: int) -> TurnRecord:
        async with self.db.session() as s:
            row = await s.get(Turn, turn_id)
            if row is None:
                raise RecordNotFound(f"turn {turn_id} not found")
            return TurnRecord.of(row)

    async def iter_turns(self, batch: int = 500, user_id: str | None = None
                         ) -> AsyncIterator[list[TurnRecord]]:
        """Every turn (of one user, when given) in id order, in batches (memory reindex)."""
        last = 0
        while True:
            query = select(Turn).where(Turn.id > last)
            if user_id is not None:
                query = query.where(Turn.user_id == user_id)
            async with self.db.session() as s:
                rows = list(await s.scalars(query.order_by(Turn.id).limit(batch)))
            if not rows:
                return
            last = rows[-1].id
            yield [TurnRecord.of(r) for r in rows]

    async def session_stats(self, session_id: str, *, owner: str | None = None
                            ) -> SessionStats:
        async with self.db.session() as s:
            session = await _session_row(s, session_id, owner)
            row = (await s.execute(
                select(
                    func.count(Turn.id).label("turns"),
                    func.sum(case((Turn.role == "user", 1), else_=0)).label("user_turns"),
                    func.sum(case((Turn.role == "assistant", 1), else_=0)).label("assistant"),
                    func.sum(case((Turn.interrupted, 1), else_=0)).label("interrupted"),
                    func.coalesce(func.sum(Turn.prompt_tokens), 0).label("prompt_tokens"),
                    func.coalesce(func.sum(Turn.completion_tokens), 0).label("completion"),
                    func.coalesce(func.sum(Turn.audio_duration_ms), 0).label("audio_ms"),
                    func.min(Turn.created_at).label("first"),
                    func.max(Turn.created_at).label("last"),
                    *_latency_columns(),
                ).where(Turn.session_id == session_id)
            )).one()
            return SessionStats(
                session=SessionRecord.of(session), turns=int(row.turns),
                user_turns=int(row.user_turns or 0), assistant_turns=int(row.assistant or 0),
                interrupted_turns=int(row.interrupted or 0),
                prompt_tokens=int(row.prompt_tokens), completion_tokens=int(row.completion),
                audio_seconds=round(float(row.audio_ms) / 1000, 3),
                first_turn_at=_aware(row.first), last_turn_at=_aware(row.last),
                average_ms=_latency(row))

    async def user_stats(self, user_id: str) -> UserStats:
        async with self.db.session() as s:
            user = await s.get(User, user_id)
            if user is None:
                raise RecordNotFound(f"user {user_id!r} not found")
            sessions = (await s.execute(
                select(func.count(Session.id).label("n"),
                       func.sum(case((Session.ended_at.is_(None), 1), else_=0)).label("active"),
                       func.min(Session.started_at).label("first"))
                .where(Session.user_id == user_id))).one()
            turns = (await s.execute(
                select(
                    func.count(Turn.id).label("turns"),
                    func.sum(case((Turn.role == "user", 1), else_=0)).label("user_turns"),
                    func.sum(case((Turn.role == "assistant", 1), else_=0)).label("assistant"),
                    func.coalesce(func.sum(Turn.prompt_tokens), 0).label("prompt_tokens"),
                    func.coalesce(func.sum(Turn.completion_tokens), 0).label("completion"),
                    func.max(Turn.created_at).label("last"),
                    *_latency_columns(),
                ).where(Turn.user_id == user_id))).one()
            n_sessions = int(sessions.n)
            n_turns = int(turns.turns)
            return UserStats(
                user_id=user_id, created_at=user.created_at, sessions=n_sessions,
                active_sessions=int(sessions.active or 0), turns=n_turns,
                user_turns=int(turns.user_turns or 0), assistant_turns=int(turns.assistant or 0),
                prompt_tokens=int(turns.prompt_tokens), completion_tokens=int(turns.completion),
                average_turns_per_session=round(n_turns / n_sessions, 3) if n_sessions else 0.0,
                first_activity_at=_aware(sessions.first),
                last_activity_at=_aware(turns.last) or _aware(sessions.first),
                average_ms=_latency(turns))


async def user_row(s: AsyncSession, user_id: str, now: datetime) -> User:
    """The user's row, added (and flushed, for rows that reference it) on first sight."""
    user = await s.get(User, user_id)
    if user is None:
        user = User(id=user_id, created_at=now, last_seen_at=now)
        s.add(user)
        await s.flush()
    return user


async def _session_row(s: AsyncSession, session_id: str, owner: str | None = None) -> Session:
    """The row, or RecordNotFound; with ``owner``, another user's session is not found
    either (the same error, so an id says nothing about whether it exists)."""
    row = await s.get(Session, session_id)
    if row is None or (owner is not None and row.user_id != owner):
        raise RecordNotFound(f"session {session_id!r} not found")
    return row


def _aware(value: datetime | None) -> datetime | None:
    """Aggregates bypass the column type: re-attach UTC."""
    from datetime import UTC

    if value is None:
        return None
    if isinstance(value, str):  # SQLite returns aggregates of DATETIME as text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
