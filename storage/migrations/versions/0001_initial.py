"""users, sessions, turns

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from storage.tables import MYSQL_TABLE_ARGS, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", UtcDateTime(), nullable=False),
        **MYSQL_TABLE_ARGS,
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("language", sa.String(16)),
        sa.Column("voice", sa.String(128)),
        sa.Column("instructions", sa.Text()),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("ended_at", UtcDateTime()),
        **MYSQL_TABLE_ARGS,
    )
    op.create_index("ix_sessions_user_started", "sessions", ["user_id", "started_at"])
    op.create_table(
        "turns",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("session_id", sa.String(64), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("language", sa.String(16)),
        sa.Column("audio_path", sa.String(512)),
        sa.Column("audio_duration_ms", sa.Float()),
        sa.Column("stt_ms", sa.Float()),
        sa.Column("llm_first_token_ms", sa.Float()),
        sa.Column("llm_total_ms", sa.Float()),
        sa.Column("tts_first_audio_ms", sa.Float()),
        sa.Column("tts_total_ms", sa.Float()),
        sa.Column("voice_to_voice_ms", sa.Float()),
        sa.Column("prompt_tokens", sa.Integer()),
        sa.Column("completion_tokens", sa.Integer()),
        sa.Column("interrupted", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        **MYSQL_TABLE_ARGS,
    )
    op.create_index("ix_turns_session_id", "turns", ["session_id", "id"])
    op.create_index("ix_turns_user_created", "turns", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_table("turns")
    op.drop_table("sessions")
    op.drop_table("users")
