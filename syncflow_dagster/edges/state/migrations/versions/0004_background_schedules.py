"""background_sync_schedule: one row per entity, the source of truth of its background sync.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

The table was keyed by (entity, partition) and never written. It becomes one
row per entity: the window and its time zone, the nightly budget (rows per
night, or a target number of nights), the mode, the status, and the progress
(rows done of total, nights used, the current night and its rows). The
reading position (watermark, cursor of a full pass) stays in sync_positions.
The old table held no data SyncFlow wrote; it is dropped, and downgrade
recreates it empty.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from syncflow_dagster.edges.state.types import UtcDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("pending", "running", "paused", "done", "failed")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.drop_index("ix_background_sync_schedule_status", table_name="background_sync_schedule")
    op.drop_table("background_sync_schedule")
    zero = sa.text("0")
    op.create_table(
        "background_sync_schedule",
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("window_start", sa.String(8), nullable=False),
        sa.Column("window_end", sa.String(8), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("rows_per_night", sa.BigInteger(), nullable=True),
        sa.Column("target_nights", sa.Integer(), nullable=True),
        sa.Column("mode", sa.String(16), server_default="incremental", nullable=False),
        sa.Column("status", sa.String(16), server_default="pending", nullable=False),
        sa.Column("on_hold", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("rows_done", sa.BigInteger(), server_default=zero, nullable=False),
        sa.Column("rows_total", sa.BigInteger(), nullable=True),
        sa.Column("nights_used", sa.Integer(), server_default=zero, nullable=False),
        sa.Column("night", sa.String(16), nullable=True),
        sa.Column("night_rows", sa.BigInteger(), server_default=zero, nullable=False),
        sa.Column("chunk_seconds", sa.Float(), nullable=True),
        sa.Column("trigger_requested_at", UtcDateTime(), nullable=True),
        sa.Column("started_at", UtcDateTime(), nullable=True),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), server_default=sa.func.now(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_run_id", sa.String(100), nullable=True),
        sa.CheckConstraint(
            _in("status", STATUSES), name=op.f("ck_background_sync_schedule_status")
        ),
        sa.CheckConstraint(
            _in("mode", ("incremental", "full")), name=op.f("ck_background_sync_schedule_mode")
        ),
        sa.PrimaryKeyConstraint("entity", name=op.f("pk_background_sync_schedule")),
    )


def downgrade() -> None:
    op.drop_table("background_sync_schedule")
    zero = sa.text("0")
    op.create_table(
        "background_sync_schedule",
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("partition_key", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), server_default="pending", nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("rows_done", sa.BigInteger(), server_default=zero, nullable=False),
        sa.Column("rows_total", sa.BigInteger(), nullable=True),
        sa.Column("window_start", UtcDateTime(), nullable=True),
        sa.Column("window_end", UtcDateTime(), nullable=True),
        sa.Column("nights_used", sa.Integer(), server_default=zero, nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), server_default=sa.func.now(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'paused', 'done')",
            name=op.f("ck_background_sync_schedule_status"),
        ),
        sa.PrimaryKeyConstraint(
            "entity", "partition_key", name=op.f("pk_background_sync_schedule")
        ),
    )
    op.create_index(
        "ix_background_sync_schedule_status", "background_sync_schedule", ["status"]
    )
