"""Initial state store schema: the six tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Frozen: later schema changes are new revisions, never edits of this one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from syncflow_dagster.edges.state.types import BkHash, DataHash, UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
METRICS = (
    "fetched", "normalized", "normalize_failed", "validated", "validation_failed", "mapped",
    "map_failed", "inserted", "updated", "deleted", "unchanged", "pending_children",
    "resolved_children", "ingested", "ingest_failed", "dead_lettered", "duration_ms",
)


def _now(name, nullable=False):
    return sa.Column(name, UtcDateTime(), server_default=sa.func.now(), nullable=nullable)


def _ts(name):
    return sa.Column(name, UtcDateTime(), nullable=True)


def _zero(name, type_=sa.BigInteger):
    return sa.Column(name, type_(), server_default=sa.text("0"), nullable=False)


def _check(table, column, values):
    allowed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=op.f(f"ck_{table}_{column}"))


def upgrade() -> None:
    op.create_table(
        "sync_batches",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("partition_key", sa.String(100), nullable=True),
        sa.Column("run_id", sa.String(100), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), server_default="running", nullable=False),
        _now("started_at"),
        _ts("finished_at"),
        sa.Column("mapping_version", sa.Integer(), nullable=True),
        sa.Column("watermark_from", sa.BigInteger(), nullable=True),
        sa.Column("watermark_to", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        *(_zero(name) for name in METRICS),
        _check("sync_batches", "mode", ("full", "incremental", "retry")),
        _check("sync_batches", "status", ("running", "succeeded", "failed")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_batches")),
    )
    op.create_index("ix_sync_batches_entity_id", "sync_batches", ["entity", "id"])
    op.create_index(
        "ix_sync_batches_entity_status_watermark_to",
        "sync_batches",
        ["entity", "status", "watermark_to"],
    )
    op.create_index("ix_sync_batches_run_id", "sync_batches", ["run_id"])

    op.create_table(
        "erp_sync_state",
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("bk_hash", BkHash(), nullable=False),
        sa.Column("data_hash", DataHash(), nullable=False),
        sa.Column("rowversion", sa.BigInteger(), nullable=True),
        sa.Column("last_batch_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("entity", "bk_hash", name=op.f("pk_erp_sync_state")),
    )

    op.create_table(
        "failed_records",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("batch_id", ID, nullable=False),
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("bk_hash", BkHash(), nullable=True),
        sa.Column("source_key", sa.Text(), nullable=True),
        sa.Column("rowversion", sa.BigInteger(), nullable=True),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("code", sa.String(100), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.Column("normalized", sa.Text(), nullable=True),
        sa.Column("mapped", sa.Text(), nullable=True),
        _zero("attempts", sa.Integer),
        _ts("next_retry_at"),
        sa.Column("status", sa.String(16), server_default="open", nullable=False),
        _ts("resolved_at"),
        sa.Column("resolution", sa.Text(), nullable=True),
        _now("created_at"),
        _now("updated_at"),
        _check("failed_records", "status", ("open", "retrying", "resolved", "abandoned")),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["sync_batches.id"], name=op.f("fk_failed_records_batch_id_sync_batches")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_failed_records")),
    )
    op.create_index("ix_failed_records_batch_id", "failed_records", ["batch_id"])
    op.create_index("ix_failed_records_entity_bk_hash", "failed_records", ["entity", "bk_hash"])
    op.create_index(
        "ix_failed_records_entity_status_id", "failed_records", ["entity", "status", "id"]
    )
    op.create_index("ix_failed_records_status_id", "failed_records", ["status", "id"])

    op.create_table(
        "pending_children",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("bk_hash", BkHash(), nullable=False),
        sa.Column("batch_id", ID, nullable=False),
        sa.Column("rowversion", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("waiting_for", sa.Text(), nullable=False),
        _zero("attempts", sa.Integer),
        _ts("next_retry_at"),
        sa.Column("status", sa.String(16), server_default="waiting", nullable=False),
        _now("created_at"),
        _now("updated_at"),
        _ts("released_at"),
        _check("pending_children", "status", ("waiting", "released", "expired")),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["sync_batches.id"],
            name=op.f("fk_pending_children_batch_id_sync_batches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_children")),
    )
    op.create_index("ix_pending_children_batch_id", "pending_children", ["batch_id"])
    op.create_index("ix_pending_children_status_id", "pending_children", ["status", "id"])
    op.create_index(
        "uq_pending_children_waiting",
        "pending_children",
        ["entity", "bk_hash"],
        unique=True,
        postgresql_where=sa.text("status = 'waiting'"),
        sqlite_where=sa.text("status = 'waiting'"),
    )

    op.create_table(
        "background_sync_schedule",
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("partition_key", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), server_default="pending", nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        _zero("rows_done"),
        sa.Column("rows_total", sa.BigInteger(), nullable=True),
        _ts("window_start"),
        _ts("window_end"),
        _zero("nights_used", sa.Integer),
        _ts("started_at"),
        _now("updated_at"),
        _ts("finished_at"),
        _check("background_sync_schedule", "status", ("pending", "running", "paused", "done")),
        sa.PrimaryKeyConstraint(
            "entity", "partition_key", name=op.f("pk_background_sync_schedule")
        ),
    )
    op.create_index(
        "ix_background_sync_schedule_status", "background_sync_schedule", ["status"]
    )

    op.create_table(
        "field_mappings",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        _now("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_mappings")),
        sa.UniqueConstraint(
            "entity", "config_hash", name=op.f("uq_field_mappings_entity_config_hash")
        ),
        sa.UniqueConstraint("entity", "version", name=op.f("uq_field_mappings_entity_version")),
    )


def downgrade() -> None:
    for table in (
        "field_mappings",
        "background_sync_schedule",
        "pending_children",
        "failed_records",
        "erp_sync_state",
        "sync_batches",
    ):
        op.drop_table(table)
