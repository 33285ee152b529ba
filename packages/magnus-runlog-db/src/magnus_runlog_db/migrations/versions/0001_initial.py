"""The first schema: runs, parameters and parts (one row per step or branch log).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade(prefix: str) -> None:
    op.create_table(
        f"{prefix}_runs",
        sa.Column("run_id", sa.String(), primary_key=True),
        sa.Column("dag_hash", sa.String(), nullable=True),
        sa.Column("use_cached", sa.Boolean(), nullable=False),
        sa.Column("tag", sa.String(), nullable=True),
        sa.Column("original_run_id", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("run_config", sa.Text(), nullable=False),
    )
    op.create_table(
        f"{prefix}_parameters",
        sa.Column("run_id", sa.String(), sa.ForeignKey(f"{prefix}_runs.run_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.create_table(
        f"{prefix}_parts",
        sa.Column("id", _ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(), sa.ForeignKey(f"{prefix}_runs.run_id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("internal_name", sa.String(), nullable=False),
        sa.Column("parent", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.UniqueConstraint("run_id", "kind", "internal_name", name=f"uq_{prefix}_parts_key"),
    )
    op.create_index(f"ix_{prefix}_parts_parent", f"{prefix}_parts", ["run_id", "parent"])


def downgrade(prefix: str) -> None:
    op.drop_table(f"{prefix}_parts")
    op.drop_table(f"{prefix}_parameters")
    op.drop_table(f"{prefix}_runs")
