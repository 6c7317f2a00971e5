"""SQL schema: users, sessions, turns.

Changes go through Alembic migrations (``storage/migrations``); this module is the
target the migrations are checked against.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

ID_LENGTH = 64
ROLES = ("system", "user", "assistant")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Naive UTC in the database (MariaDB DATETIME has no zone), aware UTC in Python."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def load_dialect_impl(self, dialect):  # type: ignore[no-untyped-def]
        # MariaDB's plain DATETIME drops microseconds; turn order and latency need them.
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=False))

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


# utf8mb4 so Korean and emoji round-trip on MariaDB; ignored by SQLite.
MYSQL_TABLE_ARGS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci",
                    "mariadb_charset": "utf8mb4", "mariadb_collate": "utf8mb4_unicode_ci"}


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    sessions: Mapped[list[Session]] = relationship(back_populates="user")


class Session(Base):
    __tablename__ = "sessions"
    __table_args__ = (
        Index("ix_sessions_user_started", "user_id", "started_at"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    language: Mapped[str | None] = mapped_column(String(16))
    voice: Mapped[str | None] = mapped_column(String(128))
    instructions: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    user: Mapped[User] = relationship(back_populates="sessions")
    turns: Mapped[list[Turn]] = relationship(back_populates="session",
                                             order_by="Turn.id")


class Turn(Base):
    """One message of a conversation, with what it cost to produce."""

    __tablename__ = "turns"
    __table_args__ = (
        Index("ix_turns_session_id", "session_id", "id"),
        Index("ix_turns_user_created", "user_id", "created_at"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    # Denormalised from the session so per-user statistics and memory need no join.
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    audio_path: Mapped[str | None] = mapped_column(String(512))
    audio_duration_ms: Mapped[float | None] = mapped_column(Float)
    # Per-stage timings in milliseconds (None when a stage did not run).
    stt_ms: Mapped[float | None] = mapped_column(Float)
    """End of user speech (or upload received) -> transcript ready."""
    llm_first_token_ms: Mapped[float | None] = mapped_column(Float)
    llm_total_ms: Mapped[float | None] = mapped_column(Float)
    tts_first_audio_ms: Mapped[float | None] = mapped_column(Float)
    tts_total_ms: Mapped[float | None] = mapped_column(Float)
    voice_to_voice_ms: Mapped[float | None] = mapped_column(Float)
    """End of user speech -> first reply audio sent."""
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    interrupted: Mapped[bool] = mapped_column(default=False)
    """An assistant turn cut short by barge-in: ``text`` holds only what was sent."""
    incomplete_reason: Mapped[str | None] = mapped_column(String(32))
    """Why an assistant reply stopped before the model finished it: ``max_output_tokens``
    or ``repetition`` (a loop was stopped); None when the model ended it."""
    tool_calls: Mapped[list | None] = mapped_column(JSON)
    """An assistant turn's function calls: ``[{"call_id", "name", "arguments", "item_id"}]``."""
    tool_call_id: Mapped[str | None] = mapped_column(String(128))
    """A ``tool`` turn (one call's result, in ``text``): the call it answers."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    session: Mapped[Session] = relationship(back_populates="turns")


class ApiKey(Base):
    """An API key: only the SHA-256 of the secret is stored, never the secret."""

    __tablename__ = "api_keys"
    __table_args__ = (
        Index("ix_api_keys_user", "user_id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(128))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    """The secret's first characters, so people can tell their keys apart."""
    admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ClientSecret(Base):
    """An ephemeral client secret (``ek_``) for one realtime connection: only the SHA-256
    of the secret is stored. ``session`` is the session configuration it applies, as the
    fields of a ``session.update`` in the engine's shape."""

    __tablename__ = "client_secrets"
    __table_args__ = (
        Index("ix_client_secrets_user", "user_id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    minted_by: Mapped[str | None] = mapped_column(String(32))
    """The API key that minted it (no foreign key: the bootstrap admin key has no row);
    None under open access."""
    model: Mapped[str] = mapped_column(String(128))
    session: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
