"""The index of executed steps: by cache key, and by the content hash of each file a step put.

Runs recorded before this revision are not indexed: ``--cache`` and ``magnus lineage`` find only
steps recorded since.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade(prefix: str) -> None:
    op.create_table(
        f"{prefix}_index",
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("digest", sa.String(), primary_key=True),
        sa.Column("run_id", sa.String(), sa.ForeignKey(f"{prefix}_runs.run_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("internal_name", sa.String(), primary_key=True),
        sa.Column("ended", sa.String(), nullable=False),
    )


def downgrade(prefix: str) -> None:
    op.drop_table(f"{prefix}_index")
