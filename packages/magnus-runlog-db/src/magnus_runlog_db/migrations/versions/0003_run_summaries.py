"""Each run's summary (status, tag, first start, last end), kept with its final status for listing.

Runs recorded before this revision have none: listing reads their parts, as before.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade(prefix: str) -> None:
    op.add_column(f"{prefix}_runs", sa.Column("summary", sa.Text(), nullable=True))


def downgrade(prefix: str) -> None:
    op.drop_column(f"{prefix}_runs", "summary")
