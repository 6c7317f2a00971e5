"""turns: why an assistant reply stopped before the model finished

``incomplete_reason`` is ``max_output_tokens`` (the token limit) or ``repetition`` (a
loop was stopped); null for a reply the model ended itself. A barge-in is ``interrupted``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.add_column(sa.Column("incomplete_reason", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.drop_column("incomplete_reason")
