"""Positions, leases, failure kinds, and what a run may have left at the hub.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

* ``sync_positions``: one row per entity, the incremental watermark (seeded
  from the succeeded batches, where it was derived from until now) and the
  open full pass's cursor, so a pass cut short by its row limit resumes.
* ``sync_leases``: one run per entity at a time, whatever launched it.
* ``sync_batches``: ``error_kind``, ``hub_unsettled`` (records sent without
  every answer recorded), ``reconciled_by``, ``deletes_checked``, the statuses
  ``paused`` / ``skipped`` and the metrics ``fetch_failed``,
  ``delete_candidates``, ``expired_children``, ``reconciled``.
* ``failed_records``: ``error_kind``, ``actions``, status ``discarded``;
  ``pending_children``: ``actions``, statuses ``dead_lettered`` / ``dropped``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from syncflow_dagster.edges.state.types import UtcDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_METRICS = ("fetch_failed", "delete_candidates", "expired_children", "reconciled")
KINDS = ("transient", "permanent", "configuration")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _swap_check(batch: object, table: str, column: str, values: Sequence[str]) -> None:
    batch.drop_constraint(op.f(f"ck_{table}_{column}"), type_="check")  # type: ignore[attr-defined]
    batch.create_check_constraint(op.f(f"ck_{table}_{column}"), _in(column, values))  # type: ignore[attr-defined]


def upgrade() -> None:
    op.create_table(
        "sync_positions",
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("watermark", sa.BigInteger(), nullable=True),
        sa.Column("watermark_cursor", sa.Text(), nullable=True),
        sa.Column("pass_started_at", UtcDateTime(), nullable=True),
        sa.Column("pass_cursor", sa.Text(), nullable=True),
        sa.Column("pass_rowversion", sa.BigInteger(), nullable=True),
        sa.Column("pass_rows", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("pass_batches", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("passes_completed", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_pass_finished_at", UtcDateTime(), nullable=True),
        sa.Column("deletes_checked_at", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("entity", name=op.f("pk_sync_positions")),
    )
    op.execute(
        "INSERT INTO sync_positions (entity, watermark)"
        " SELECT entity, max(watermark_to) FROM sync_batches"
        " WHERE status = 'succeeded' GROUP BY entity"
    )
    op.create_table(
        "sync_leases",
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("holder", sa.String(100), nullable=False),
        sa.Column("holder_host", sa.String(255), nullable=True),
        sa.Column("holder_pid", sa.Integer(), nullable=True),
        sa.Column("batch_id", sa.BigInteger(), nullable=True),
        sa.Column("acquired_at", UtcDateTime(), nullable=False),
        sa.Column("renewed_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("entity", name=op.f("pk_sync_leases")),
    )
    with op.batch_alter_table("sync_batches") as batch:
        batch.add_column(sa.Column("error_kind", sa.String(16), nullable=True))
        batch.add_column(
            sa.Column("hub_unsettled", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column("reconciled_by", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("deletes_checked", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        for name in NEW_METRICS:
            batch.add_column(
                sa.Column(name, sa.BigInteger(), server_default=sa.text("0"), nullable=False)
            )
        _swap_check(
            batch,
            "sync_batches",
            "status",
            ("running", "succeeded", "failed", "paused", "skipped"),
        )
        batch.create_check_constraint(op.f("ck_sync_batches_error_kind"), _in("error_kind", KINDS))
    with op.batch_alter_table("failed_records") as batch:
        batch.add_column(sa.Column("error_kind", sa.String(16), nullable=True))
        batch.add_column(sa.Column("actions", sa.Text(), nullable=True))
        _swap_check(
            batch,
            "failed_records",
            "status",
            ("open", "retrying", "resolved", "abandoned", "discarded"),
        )
        batch.create_check_constraint(op.f("ck_failed_records_error_kind"), _in("error_kind", KINDS))
    with op.batch_alter_table("pending_children") as batch:
        batch.add_column(sa.Column("actions", sa.Text(), nullable=True))
        _swap_check(
            batch,
            "pending_children",
            "status",
            ("waiting", "released", "expired", "dead_lettered", "dropped"),
        )


def downgrade() -> None:
    op.execute("UPDATE pending_children SET status = 'expired' WHERE status IN"
               " ('dead_lettered', 'dropped')")
    with op.batch_alter_table("pending_children") as batch:
        _swap_check(batch, "pending_children", "status", ("waiting", "released", "expired"))
        batch.drop_column("actions")
    op.execute("UPDATE failed_records SET status = 'abandoned' WHERE status = 'discarded'")
    with op.batch_alter_table("failed_records") as batch:
        batch.drop_constraint(op.f("ck_failed_records_error_kind"), type_="check")
        _swap_check(
            batch, "failed_records", "status", ("open", "retrying", "resolved", "abandoned")
        )
        batch.drop_column("actions")
        batch.drop_column("error_kind")
    op.execute(
        "UPDATE sync_batches SET status = 'failed' WHERE status IN ('paused', 'skipped')"
    )
    with op.batch_alter_table("sync_batches") as batch:
        batch.drop_constraint(op.f("ck_sync_batches_error_kind"), type_="check")
        _swap_check(batch, "sync_batches", "status", ("running", "succeeded", "failed"))
        for name in reversed(NEW_METRICS):
            batch.drop_column(name)
        for name in ("deletes_checked", "reconciled_by", "hub_unsettled", "error_kind"):
            batch.drop_column(name)
    op.drop_table("sync_leases")
    op.drop_table("sync_positions")
