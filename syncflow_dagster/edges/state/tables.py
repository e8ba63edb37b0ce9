"""The state store's schema: seven tables on one MetaData (SQLAlchemy Core).

Alembic's initial revision creates exactly this; a test keeps the two equal.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)

from syncflow_dagster.edges.state.types import BkHash, DataHash, UtcDateTime
from syncflow_dagster.errors import ERROR_KINDS
from syncflow_dagster.metrics import METRIC_NAMES

BATCH_MODES = ("full", "incremental", "retry")
# paused: a background run stopped cleanly at its window's end or budget (it
# resumes); skipped: a run that found it must not work (outside its window).
BATCH_STATUSES = ("running", "succeeded", "failed", "paused", "skipped")
FAILED_STATUSES = ("open", "retrying", "resolved", "abandoned", "discarded")
PENDING_STATUSES = ("waiting", "released", "expired", "dead_lettered", "dropped")
PROGRESS_STATUSES = ("pending", "running", "paused", "done", "failed")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# An auto-incrementing 64-bit id: BIGINT identity on PostgreSQL, INTEGER
# PRIMARY KEY (the rowid, itself 64-bit) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")


def _one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=column)


def _created_updated() -> list[Column[object]]:
    return [
        Column("created_at", UtcDateTime(), nullable=False, server_default=func.now()),
        Column("updated_at", UtcDateTime(), nullable=False, server_default=func.now()),
    ]


sync_batches = Table(
    "sync_batches",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("entity", String(100), nullable=False),
    Column("partition_key", String(100)),
    Column("run_id", String(100), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("status", String(16), nullable=False, server_default="running"),
    Column("started_at", UtcDateTime(), nullable=False, server_default=func.now()),
    Column("finished_at", UtcDateTime()),
    Column("mapping_version", Integer()),
    Column("watermark_from", BigInteger()),
    Column("watermark_to", BigInteger()),
    Column("error", Text()),
    Column("error_kind", String(16)),
    # Set before the first record goes to the hub, cleared once every answer is in
    # the state: a batch that ends with it set may have changed the hub unseen.
    Column("hub_unsettled", Boolean(), nullable=False, server_default=false()),
    # The batch that brought the state back in line with the hub after this one.
    Column("reconciled_by", BigInteger()),
    # Whether the run compared APISmith's key listing with the state (deletes).
    Column("deletes_checked", Boolean(), nullable=False, server_default=false()),
    *(
        Column(name, BigInteger(), nullable=False, server_default=text("0"))
        for name in METRIC_NAMES
    ),
    _one_of("mode", BATCH_MODES),
    _one_of("status", BATCH_STATUSES),
    _one_of("error_kind", ERROR_KINDS),
    Index("ix_sync_batches_entity_id", "entity", "id"),
    Index("ix_sync_batches_entity_status_watermark_to", "entity", "status", "watermark_to"),
    Index("ix_sync_batches_run_id", "run_id"),
)

# A small id per entity name, so that the hot table's key is 18 bytes, not
# 16 plus the name: a smaller primary key costs PostgreSQL ~20 % less CPU per
# row written (1M random keys: 2.6 instead of 3.2 core-seconds).
EntityId = SmallInteger().with_variant(Integer(), "sqlite")

sync_entities = Table(
    "sync_entities",
    metadata,
    Column("id", EntityId, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
)

# The hot table (7M+ rows per entity). No foreign keys (entity_id,
# last_batch_id): a per-row RI check would dominate the bulk writes, and both
# ids come from the store itself (entity_id, start_batch). The primary key
# serves every query (load by entity, join on keys, upsert conflict target).
erp_sync_state = Table(
    "erp_sync_state",
    metadata,
    Column("entity_id", EntityId, nullable=False),
    Column("bk_hash", BkHash(), nullable=False),
    Column("data_hash", DataHash(), nullable=False),
    Column("rowversion", BigInteger()),
    Column("last_batch_id", BigInteger(), nullable=False),
    PrimaryKeyConstraint("entity_id", "bk_hash"),
)

failed_records = Table(
    "failed_records",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("batch_id", Id, ForeignKey("sync_batches.id"), nullable=False),
    Column("entity", String(100), nullable=False),
    Column("bk_hash", BkHash()),
    Column("source_key", Text()),
    Column("rowversion", BigInteger()),
    Column("stage", String(32), nullable=False),
    Column("code", String(100), nullable=False),
    Column("detail", Text()),
    Column("raw", Text()),
    Column("normalized", Text()),
    Column("mapped", Text()),
    Column("attempts", Integer(), nullable=False, server_default=text("0")),
    Column("next_retry_at", UtcDateTime()),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("error_kind", String(16)),
    Column("resolved_at", UtcDateTime()),
    Column("resolution", Text()),
    # JSON list of what people and sensors did with the letter: {at, action, reason}.
    Column("actions", Text()),
    *_created_updated(),
    _one_of("status", FAILED_STATUSES),
    _one_of("error_kind", ERROR_KINDS),
    # due_failed: status = 'open' AND id > :after ORDER BY id (next_retry_at filtered on the way)
    Index("ix_failed_records_status_id", "status", "id"),
    # list_failed(entity, status)
    Index("ix_failed_records_entity_status_id", "entity", "status", "id"),
    Index("ix_failed_records_batch_id", "batch_id"),
    Index("ix_failed_records_entity_bk_hash", "entity", "bk_hash"),
)

pending_children = Table(
    "pending_children",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("entity", String(100), nullable=False),
    Column("bk_hash", BkHash(), nullable=False),
    Column("batch_id", Id, ForeignKey("sync_batches.id"), nullable=False),
    Column("rowversion", BigInteger()),
    Column("payload", Text(), nullable=False),
    Column("waiting_for", Text(), nullable=False),
    Column("attempts", Integer(), nullable=False, server_default=text("0")),
    Column("next_retry_at", UtcDateTime()),
    Column("status", String(16), nullable=False, server_default="waiting"),
    *_created_updated(),
    Column("released_at", UtcDateTime()),
    Column("actions", Text()),
    _one_of("status", PENDING_STATUSES),
    # One waiting row per child; released/expired rows are history.
    Index(
        "uq_pending_children_waiting",
        "entity",
        "bk_hash",
        unique=True,
        postgresql_where=text("status = 'waiting'"),
        sqlite_where=text("status = 'waiting'"),
    ),
    # due_pending: status = 'waiting' AND id > :after ORDER BY id
    Index("ix_pending_children_status_id", "status", "id"),
    Index("ix_pending_children_batch_id", "batch_id"),
)

# One background sync per entity: a big table synced night by night, inside its
# window and within a nightly budget, resuming where the last night stopped
# (the reading position itself is sync_positions).
background_sync_schedule = Table(
    "background_sync_schedule",
    metadata,
    Column("entity", String(100), primary_key=True),
    Column("window_start", String(8), nullable=False),
    Column("window_end", String(8), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("rows_per_night", BigInteger()),
    Column("target_nights", Integer()),
    Column("mode", String(16), nullable=False, server_default="incremental"),
    Column("status", String(16), nullable=False, server_default="pending"),
    # held by a person: the sensor launches nothing until it is resumed
    Column("on_hold", Boolean(), nullable=False, server_default=false()),
    Column("rows_done", BigInteger(), nullable=False, server_default=text("0")),
    Column("rows_total", BigInteger()),
    Column("nights_used", Integer(), nullable=False, server_default=text("0")),
    # the night (its partition key) the last run worked in, and the rows of that night
    Column("night", String(16)),
    Column("night_rows", BigInteger(), nullable=False, server_default=text("0")),
    Column("chunk_seconds", Float()),
    Column("trigger_requested_at", UtcDateTime()),
    Column("started_at", UtcDateTime()),
    Column("finished_at", UtcDateTime()),
    Column("updated_at", UtcDateTime(), nullable=False, server_default=func.now()),
    Column("last_error", Text()),
    Column("last_run_id", String(100)),
    _one_of("status", PROGRESS_STATUSES),
    _one_of("mode", ("incremental", "full")),
)

field_mappings = Table(
    "field_mappings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("entity", String(100), nullable=False),
    Column("version", Integer(), nullable=False),
    Column("config_hash", String(64), nullable=False),
    Column("config", Text(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False, server_default=func.now()),
    UniqueConstraint("entity", "config_hash"),
    UniqueConstraint("entity", "version"),
)

# Where an entity's reading stands: the incremental watermark and the open full
# pass. One row per entity, advanced only past records that are settled.
sync_positions = Table(
    "sync_positions",
    metadata,
    Column("entity", String(100), primary_key=True),
    # incremental: every record up to this rowversion is settled; a run cut short
    # resumes after its cursor (APISmith's), rereading nothing
    Column("watermark", BigInteger()),
    Column("watermark_cursor", Text()),
    # the open full pass (started_at null: none open); it resumes after its cursor
    Column("pass_started_at", UtcDateTime()),
    Column("pass_cursor", Text()),
    Column("pass_rowversion", BigInteger()),
    Column("pass_rows", BigInteger(), nullable=False, server_default=text("0")),
    Column("pass_batches", Integer(), nullable=False, server_default=text("0")),
    Column("passes_completed", Integer(), nullable=False, server_default=text("0")),
    Column("last_pass_finished_at", UtcDateTime()),
    Column("deletes_checked_at", UtcDateTime()),
    Column("updated_at", UtcDateTime(), nullable=False, server_default=func.now()),
)

# One run per entity at a time: the holder renews its lease while it works;
# a lease whose holder died expires, and the next run takes it over.
sync_leases = Table(
    "sync_leases",
    metadata,
    Column("entity", String(100), primary_key=True),
    Column("holder", String(100), nullable=False),
    # where the holder runs: a lease whose process on this host is gone is dead at once
    Column("holder_host", String(255)),
    Column("holder_pid", Integer()),
    Column("batch_id", BigInteger()),
    Column("acquired_at", UtcDateTime(), nullable=False),
    Column("renewed_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)
