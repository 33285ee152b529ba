"""When each run was created and last changed, and indexes to list runs by status, tag and time.

Runs recorded before this revision get the time of the upgrade. The columns are added in place
(no table copy: on SQLite a copy of the runs table would cascade-delete its parts).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade(prefix: str) -> None:
    runs = f"{prefix}_runs"
    op.add_column(runs, sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(runs, sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(sa.text(f"UPDATE {runs} SET created_at = CURRENT_TIMESTAMP, updated_at = CURRENT_TIMESTAMP"))
    op.create_index(f"ix_{prefix}_runs_status", runs, ["status"])
    op.create_index(f"ix_{prefix}_runs_tag", runs, ["tag"])
    op.create_index(f"ix_{prefix}_runs_created_at", runs, ["created_at"])


def downgrade(prefix: str) -> None:
    runs = f"{prefix}_runs"
    for name in ("created_at", "tag", "status"):
        op.drop_index(f"ix_{prefix}_runs_{name}", runs)
    op.drop_column(runs, "updated_at")
    op.drop_column(runs, "created_at")
