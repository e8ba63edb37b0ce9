import threading
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.edges.state.engine import create_state_engine
from syncflow_dagster.settings import load_settings

from .conftest import state_rows


def test_repr_and_errors_hide_the_password(pg_url: str) -> None:
    url = make_url(pg_url).set(password="s3cr3t-pw")
    store = StateStore(url)
    try:
        assert "s3cr3t-pw" not in repr(store)
        assert "***" in repr(store)
    finally:
        store.dispose()
    with pytest.raises(ValueError, match="psycopg") as err:
        create_state_engine(url.set(drivername="postgresql+psycopg2"))
    assert "s3cr3t-pw" not in str(err.value)
    with pytest.raises(ValueError, match="only PostgreSQL and SQLite") as err:
        create_state_engine("mysql://u:s3cr3t-pw@h/db")
    assert "s3cr3t-pw" not in str(err.value)


def test_bare_postgresql_url_uses_psycopg3(pg_url: str) -> None:
    engine = create_state_engine(pg_url.replace("postgresql+psycopg://", "postgresql://"), 3)
    try:
        assert engine.dialect.driver == "psycopg"
        assert engine.pool.size() == 3  # type: ignore[attr-defined]
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_with_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    engine = create_state_engine(f"sqlite:///{tmp_path}/sub/dir/state.db")
    try:
        with engine.connect() as conn:
            pragma = lambda name: conn.exec_driver_sql(f"PRAGMA {name}").scalar_one()  # noqa: E731
            assert pragma("journal_mode") == "wal"
            assert pragma("foreign_keys") == 1
            assert pragma("busy_timeout") == 30_000
    finally:
        engine.dispose()


def test_sqlite_enforces_foreign_keys(sqlite_url: str) -> None:
    with StateStore(sqlite_url) as store:
        store.migrate()
        frame = pl.DataFrame({"stage": ["validate"], "code": ["x"]})
        with pytest.raises(IntegrityError):
            store.add_failed(12345, "items", frame)


def test_from_settings(tmp_path: Path) -> None:
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'x' / 'state.db'}")
    with StateStore.from_settings(settings) as store:
        store.migrate()
        assert store.dialect == "sqlite"
        assert store.count_state("items") == 0
    assert (tmp_path / "x" / "state.db").exists()


def test_sqlite_writers_wait_for_each_other(sqlite_url: str) -> None:
    """Separate stores (as separate processes would) writing at once: no 'database is locked'."""
    with StateStore(sqlite_url) as first:
        first.migrate()
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def write(offset: int) -> None:
        try:
            with StateStore(sqlite_url) as store:
                barrier.wait()
                for round_ in range(5):
                    store.upsert_state("items", state_rows(2_000, offset + round_ * 2_000), 1)
                    store.start_batch("items", f"run-{offset}-{round_}", "full")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i * 100_000,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with StateStore(sqlite_url) as store:
        assert store.count_state("items") == 30_000
        assert len(store.recent_batches(limit=100)) == 15
