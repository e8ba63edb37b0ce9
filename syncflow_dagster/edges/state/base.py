"""What every part of the state store shares: the engine, transactions, helpers."""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

import polars as pl
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, Row, make_url

from syncflow_dagster.edges.state import pgcopy
from syncflow_dagster.edges.state.engine import create_state_engine, reader, safe_url
from syncflow_dagster.edges.state.types import BK_HASH_BYTES, check_hex

SQLITE_CHUNK = 500  # bound parameters per IN (...) on SQLite

PROBE_KEYS = 100_000
"""Up to this many staged keys, statements join them by probing the primary key."""


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def as_keys(bk_hashes: pl.Series | Iterable[str], what: str = "bk_hash") -> pl.Series:
    """Validated, de-duplicated BK_HASH hex values as a String series named ``bk_hash``."""
    keys = bk_hashes if isinstance(bk_hashes, pl.Series) else pl.Series(list(bk_hashes))
    keys = keys.cast(pl.String).alias("bk_hash")
    check_hex(keys, BK_HASH_BYTES, what)
    return keys.unique(maintain_order=True)


def chunks(values: Sequence[Any], size: int = SQLITE_CHUNK) -> Iterator[Sequence[Any]]:
    """``values`` in consecutive slices of at most ``size``."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def rows_frame(rows: Sequence[Row[Any]], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """A frame from Core result rows, columns in ``schema`` order."""
    names = list(schema)
    return pl.DataFrame(
        [tuple(getattr(r, n) for n in names) for r in rows],
        schema=dict(schema),
        orient="row",
    )


class StoreBase:
    """Engine, dialect and transaction helpers shared by the store's parts."""

    def __init__(self, url: str | URL, pool_size: int = 20) -> None:
        """Connect (lazily) to the state DB.

        Args:
            url: SQLAlchemy URL of the state DB (``Settings.state_db_url``).
            pool_size: PostgreSQL connection pool size (``POSTGRES_POOL_SIZE``).
        """
        self._url = make_url(url)
        self._engine = create_state_engine(self._url, pool_size)
        self._reader = reader(self._engine)
        self._pg = self._engine.dialect.name == "postgresql"
        self._entity_ids: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({safe_url(self._url)!r})"

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tests and tools)."""
        return self._engine

    @property
    def dialect(self) -> str:
        """``postgresql`` or ``sqlite``."""
        return self._engine.dialect.name

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def _write(self) -> AbstractContextManager[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
        return self._engine.begin()

    def _read(self) -> AbstractContextManager[Connection]:
        """A read transaction (``BEGIN DEFERRED`` on SQLite: no write lock)."""
        return self._reader.begin()

    def _insert(self, table: Table) -> Any:
        """A dialect-specific INSERT (it has ``on_conflict_do_update``)."""
        return postgresql.insert(table) if self._pg else sqlite.insert(table)

    @contextmanager
    def _pg_keys(self, conn: Connection, keys: pl.Series) -> Iterator[str]:
        """Stage ``keys`` in a temp table (dropped at commit) and yield its name."""
        conn.exec_driver_sql("CREATE TEMP TABLE _sf_keys (bk_hash uuid NOT NULL) ON COMMIT DROP")
        pgcopy.copy_in(conn, "COPY _sf_keys FROM STDIN", keys.to_frame(), pgcopy.to_copy_text)
        # No ANALYZE: on its page count alone the planner probes the primary key
        # for a few thousand keys (~0.05 s for 10k of 1M) and hashes for many;
        # with statistics it seq-scans the whole entity even for 10k (~0.13 s).
        if keys.len() <= PROBE_KEYS:
            # Probe the primary key whatever the state's statistics say: right
            # after a big first load (not analyzed yet) the planner takes the
            # entity for a few rows and hashes all of it (0.45 s for 2k of 1M).
            conn.exec_driver_sql("SET LOCAL enable_hashjoin = off")
            conn.exec_driver_sql("SET LOCAL enable_mergejoin = off")
        yield "_sf_keys"
        # On error the rollback removes it (it was created in this transaction).
        conn.exec_driver_sql("DROP TABLE _sf_keys")
