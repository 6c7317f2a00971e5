"""client_secrets: ephemeral ``ek_`` secrets, each good for one realtime connection

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from storage.tables import MYSQL_TABLE_ARGS, UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "client_secrets",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("minted_by", sa.String(32)),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("session", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("used_at", UtcDateTime()),
        **MYSQL_TABLE_ARGS,
    )
    op.create_index("ix_client_secrets_user", "client_secrets", ["user_id"])


def downgrade() -> None:
    op.drop_table("client_secrets")
