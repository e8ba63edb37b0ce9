"""erp_sync_state on SQLite: raw DBAPI executemany / fetchall in one transaction.

The embedded default, for one machine. The SQLAlchemy result layer is skipped
(it triples the cost per row); hashes cross as 16/32-byte BLOBs, converted
from and to hex by Polars. Upserts arrive sorted by key (index locality:
~2.5x faster than arrival order at 1M rows).
"""

from typing import Any

import polars as pl
from sqlalchemy.engine import Connection

from syncflow_dagster.edges.state.base import chunks

_SELECT = "SELECT bk_hash, data_hash, rowversion FROM erp_sync_state WHERE entity_id = ?"
_UPSERT = (
    "INSERT INTO erp_sync_state (entity_id, bk_hash, data_hash, rowversion, last_batch_id)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (entity_id, bk_hash) DO UPDATE SET"
    " data_hash = excluded.data_hash, rowversion = excluded.rowversion,"
    " last_batch_id = excluded.last_batch_id"
)
_RAW = {"bk_hash": pl.Binary, "data_hash": pl.Binary, "rowversion": pl.Int64}


def _dbapi(conn: Connection) -> Any:
    return conn.connection.dbapi_connection


def _hex(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    raw = pl.DataFrame(rows, schema=_RAW, orient="row")
    return raw.with_columns(
        pl.col("bk_hash").bin.encode("hex"), pl.col("data_hash").bin.encode("hex")
    )


def load(conn: Connection, entity_id: int, keys: pl.Series | None = None) -> pl.DataFrame:
    """State of an entity (only ``keys``, if given: chunked ``IN``)."""
    dbapi = _dbapi(conn)
    if keys is None:
        return _hex(dbapi.execute(_SELECT, (entity_id,)).fetchall())
    rows: list[tuple[Any, ...]] = []
    for part in chunks(keys.str.decode("hex").to_list()):
        marks = ",".join("?" * len(part))
        rows += dbapi.execute(f"{_SELECT} AND bk_hash IN ({marks})", (entity_id, *part)).fetchall()
    return _hex(rows)


def load_versions(conn: Connection, entity_id: int) -> pl.DataFrame:
    """Every BK_HASH of an entity with its rowversion."""
    rows = (
        _dbapi(conn)
        .execute("SELECT bk_hash, rowversion FROM erp_sync_state WHERE entity_id = ?", (entity_id,))
        .fetchall()
    )
    raw = pl.DataFrame(rows, schema={"bk_hash": pl.Binary, "rowversion": pl.Int64}, orient="row")
    return raw.with_columns(pl.col("bk_hash").bin.encode("hex"))


def load_keys(conn: Connection, entity_id: int) -> pl.Series:
    """Every BK_HASH of an entity."""
    rows = (
        _dbapi(conn)
        .execute("SELECT bk_hash FROM erp_sync_state WHERE entity_id = ?", (entity_id,))
        .fetchall()
    )
    return pl.Series("bk_hash", [r[0] for r in rows], dtype=pl.Binary).bin.encode("hex")


def upsert(conn: Connection, entity_id: int, rows: pl.DataFrame, batch_id: int) -> None:
    """Write key-sorted, validated ``rows`` (``bk_hash, data_hash, rowversion``)."""
    params = rows.select(
        pl.lit(entity_id).alias("entity_id"),
        pl.col("bk_hash").str.decode("hex"),
        pl.col("data_hash").str.decode("hex"),
        "rowversion",
        pl.lit(batch_id, dtype=pl.Int64).alias("batch"),
    ).rows()
    _dbapi(conn).executemany(_UPSERT, params)


def delete(conn: Connection, entity_id: int, keys: pl.Series) -> int:
    """Delete ``keys`` of an entity; returns how many rows went."""
    params = [(entity_id, k) for k in keys.str.decode("hex").to_list()]
    cursor = _dbapi(conn).executemany(
        "DELETE FROM erp_sync_state WHERE entity_id = ? AND bk_hash = ?", params
    )
    return int(cursor.rowcount)
