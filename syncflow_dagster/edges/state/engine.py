"""Engines for the state store: psycopg 3 on PostgreSQL, WAL-mode SQLite otherwise.

URLs are only ever rendered with :meth:`URL.render_as_string` (password hidden).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url

from syncflow_dagster.settings import mask_url

SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_DRIVER = "postgresql+psycopg"


def safe_url(url: str | URL) -> str:
    """The URL as text with every credential masked (:func:`mask_url`), for reprs, logs, errors."""
    return mask_url(url)


def create_state_engine(url: str | URL, pool_size: int = 20) -> Engine:
    """Create the engine for a state DB URL.

    Args:
        url: ``postgresql[+psycopg]://…`` or ``sqlite:///path`` (the file's folder is created).
        pool_size: connections kept open on PostgreSQL (``POSTGRES_POOL_SIZE``).

    Raises:
        ValueError: for any other database or a non-psycopg PostgreSQL driver.
    """
    url = make_url(url)
    backend = url.get_backend_name()
    if backend == "postgresql":
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername=PG_DRIVER)
        if url.drivername != PG_DRIVER:
            raise ValueError(
                f"state DB {safe_url(url)}: the bulk paths need psycopg 3, use {PG_DRIVER}://"
            )
        return create_engine(
            url,
            pool_size=pool_size,
            max_overflow=max(2, pool_size // 2),
            pool_pre_ping=True,
            connect_args={"application_name": "syncflow-state"},
        )
    if backend == "sqlite":
        return _sqlite_engine(url)
    raise ValueError(f"state DB {safe_url(url)}: only PostgreSQL and SQLite are supported")


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own
        # transaction handling defers it and breaks SAVEPOINT / DDL).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            "foreign_keys=ON",
            "synchronous=NORMAL",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front (IMMEDIATE) so that the busy
        # timeout applies, instead of failing on a read-to-write upgrade.
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def reader(engine: Engine) -> Engine:
    """The same engine, but read transactions on SQLite start DEFERRED (no write lock)."""
    return engine.execution_options(sqlite_begin="DEFERRED")


@contextmanager
def sqlite_foreign_keys_off(conn: Connection) -> Iterator[None]:
    """Foreign keys off on a SQLite connection that has not begun a transaction.

    Alembic alters a SQLite table by copying it; with foreign keys on, dropping
    the old copy of a referenced table fails (or deletes the referencing rows).
    Elsewhere this does nothing.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys=ON")
