"""erp_sync_state on PostgreSQL: COPY in (text), binary COPY out.

Writers of one entity are serialized by a transaction-scoped advisory lock, so
the first load of an entity can COPY straight into the table (no conflicts are
possible), and later upserts go through a staging table and one
``INSERT … ON CONFLICT``. Input arrives sorted by key (btree locality).
"""

import polars as pl
import psycopg
from sqlalchemy.engine import Connection

from syncflow_dagster.edges.state.binary import Field, read_binary
from syncflow_dagster.edges.state.pgcopy import (
    constant_field,
    copy_in_binary,
    hex_field,
    int8_field,
)
from syncflow_dagster.edges.state.types import BK_HASH_BYTES, DATA_HASH_BYTES

STATE_FIELDS = (
    Field("bk_hash", "hex", BK_HASH_BYTES),
    Field("data_hash", "hex", DATA_HASH_BYTES),
    Field("rowversion", "int8", 8),
    Field("rowversion_is_null", "bool", 1),
)
VERSION_FIELDS = tuple(f for f in STATE_FIELDS if f.name != "data_hash")
KEY_FIELDS = (Field("bk_hash", "hex", BK_HASH_BYTES),)
# Fixed-width columns only: NULL would change a row's width, so it travels as a flag.
_ROWVERSION_COLUMNS = "coalesce(s.rowversion, 0), s.rowversion IS NULL"
STATE_COLUMNS = f"s.bk_hash, s.data_hash, {_ROWVERSION_COLUMNS}"
VERSION_COLUMNS = f"s.bk_hash, {_ROWVERSION_COLUMNS}"

_UPSERT = (
    "INSERT INTO erp_sync_state (entity_id, bk_hash, data_hash, rowversion, last_batch_id)"
    " SELECT %(entity_id)s, t.bk_hash, t.data_hash, t.rowversion, %(batch)s FROM _sf_state t"
    " ON CONFLICT (entity_id, bk_hash) DO UPDATE SET data_hash = excluded.data_hash,"
    " rowversion = excluded.rowversion, last_batch_id = excluded.last_batch_id"
    # a rerun of the same batch rewrites nothing
    " WHERE (erp_sync_state.data_hash, erp_sync_state.rowversion, erp_sync_state.last_batch_id)"
    " IS DISTINCT FROM (excluded.data_hash, excluded.rowversion, excluded.last_batch_id)"
)


def _where_entity(entity_id: int) -> str:
    return f"WHERE s.entity_id = {int(entity_id)}"


def load(
    conn: Connection, entity_id: int, keys_table: str | None = None, data_hash: bool = True
) -> pl.DataFrame:
    """State of an entity (only the keys in ``keys_table``, if given; hashes if ``data_hash``)."""
    join = f"JOIN {keys_table} k USING (bk_hash)" if keys_table else ""
    columns, fields = (
        (STATE_COLUMNS, STATE_FIELDS) if data_hash else (VERSION_COLUMNS, VERSION_FIELDS)
    )
    select = f"SELECT {columns} FROM erp_sync_state s {join} {_where_entity(entity_id)}"
    raw = read_binary(conn, select, fields)
    return raw.select(
        "bk_hash",
        *(["data_hash"] if data_hash else []),
        pl.when(~pl.col("rowversion_is_null")).then(pl.col("rowversion")).alias("rowversion"),
    )


def load_keys(conn: Connection, entity_id: int, keys_table: str | None = None) -> pl.Series:
    """Every BK_HASH of an entity (only those in ``keys_table``, if given)."""
    join = f"JOIN {keys_table} k USING (bk_hash)" if keys_table else ""
    select = f"SELECT s.bk_hash FROM erp_sync_state s {join} {_where_entity(entity_id)}"
    return read_binary(conn, select, KEY_FIELDS)["bk_hash"]


def has_at_most(conn: Connection, entity_id: int, n: int) -> bool:
    """Whether the entity has at most ``n`` state rows (reads no more than n + 1 index entries)."""
    count = conn.exec_driver_sql(
        "SELECT count(*) FROM (SELECT 1 FROM erp_sync_state"
        " WHERE entity_id = %(entity_id)s LIMIT %(limit)s) t",
        {"entity_id": entity_id, "limit": n + 1},
    ).scalar_one()
    return int(count) <= n


def lock(conn: Connection, entity: str) -> None:
    """Serialize writers of one entity's state until commit (readers never wait)."""
    conn.exec_driver_sql(
        "SELECT pg_advisory_xact_lock(hashtextextended(%(key)s, 0))",
        {"key": f"syncflow.erp_sync_state:{entity}"},
    )


_HASHES = (hex_field("bk_hash", BK_HASH_BYTES), hex_field("data_hash", DATA_HASH_BYTES))


def _copy_straight(conn: Connection, entity_id: int, rows: pl.DataFrame, batch_id: int) -> None:
    """COPY rows straight into the table (heap multi-insert, no staging)."""
    copy_in_binary(
        conn,
        "COPY erp_sync_state (entity_id, bk_hash, data_hash, rowversion, last_batch_id) FROM STDIN",
        rows,
        (
            constant_field(entity_id, 2),
            *_HASHES,
            int8_field("rowversion"),
            constant_field(batch_id, 8),
        ),
    )


def upsert(
    conn: Connection,
    entity: str,
    entity_id: int,
    rows: pl.DataFrame,
    batch_id: int,
    assume_new: bool = False,
) -> None:
    """Write key-sorted, validated ``rows`` (``bk_hash, data_hash, rowversion``) of ``entity``.

    With ``assume_new`` (the caller expects none of the keys to have state) the
    rows are COPYed straight in under a savepoint; should a key exist after all,
    the savepoint is rolled back and the rows take the upsert path.
    """
    lock(conn, entity)
    params = {"entity_id": entity_id, "batch": batch_id}
    has_rows = conn.exec_driver_sql(
        "SELECT EXISTS (SELECT 1 FROM erp_sync_state WHERE entity_id = %(entity_id)s)", params
    ).scalar_one()
    if not has_rows:
        # First load: no conflicts are possible under the lock.
        _copy_straight(conn, entity_id, rows, batch_id)
        return
    if assume_new:
        try:
            with conn.begin_nested():
                _copy_straight(conn, entity_id, rows, batch_id)
            return
        except psycopg.errors.UniqueViolation:
            pass  # some key had state after all: upsert below
    conn.exec_driver_sql(
        "CREATE TEMP TABLE _sf_state (bk_hash uuid NOT NULL, data_hash bytea NOT NULL,"
        " rowversion bigint) ON COMMIT DROP"
    )
    copy_in_binary(conn, "COPY _sf_state FROM STDIN", rows, (*_HASHES, int8_field("rowversion")))
    conn.exec_driver_sql(_UPSERT, params)
    conn.exec_driver_sql("DROP TABLE _sf_state")


def delete(conn: Connection, entity: str, entity_id: int, keys_table: str) -> int:
    """Delete the keys in ``keys_table`` of ``entity``; returns how many rows went."""
    lock(conn, entity)
    result = conn.exec_driver_sql(
        f"DELETE FROM erp_sync_state s USING {keys_table} k"
        " WHERE s.entity_id = %(entity_id)s AND s.bk_hash = k.bk_hash",
        {"entity_id": entity_id},
    )
    return int(result.rowcount)
