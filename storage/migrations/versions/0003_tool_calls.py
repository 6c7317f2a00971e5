"""turns: function calls and their results

An assistant turn may make function calls (``tool_calls``: a JSON list of
``{"call_id", "name", "arguments", "item_id"}``); a ``tool`` turn is one call's result
(``tool_call_id`` names the call, ``text`` holds the output).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.add_column(sa.Column("tool_calls", sa.JSON()))
        batch.add_column(sa.Column("tool_call_id", sa.String(128)))


def downgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.drop_column("tool_call_id")
        batch.drop_column("tool_calls")
