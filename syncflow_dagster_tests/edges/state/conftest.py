"""Fixtures for the state store tests: a migrated store on PostgreSQL and SQLite."""

from collections.abc import Iterator

import polars as pl
import polars_hash as plh
import pytest

from syncflow_dagster.edges.state import StateStore


def state_rows(n: int, offset: int = 0, salt: str = "") -> pl.DataFrame:
    """``n`` distinct records: hex bk_hash / data_hash, rowversion = offset + i."""
    keys = pl.DataFrame({"k": pl.int_range(offset, offset + n, eager=True).cast(pl.String)})
    return keys.select(
        bk_hash=plh.col("k").chash.blake3().str.slice(0, 32),
        data_hash=(pl.col("k") + pl.lit(f"|{salt}")).chash.sha2_256(),
        rowversion=pl.int_range(offset, offset + n, dtype=pl.Int64),
    )


@pytest.fixture
def store(db_url: str) -> Iterator[StateStore]:
    """A migrated store, once on PostgreSQL and once on SQLite."""
    with StateStore(db_url, pool_size=2) as s:
        s.migrate()
        yield s


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[StateStore]:
    """A migrated store on PostgreSQL only (bulk COPY paths)."""
    with StateStore(pg_url, pool_size=2) as s:
        s.migrate()
        yield s


@pytest.fixture
def batch(store: StateStore) -> int:
    """A running batch of ``items``."""
    return store.start_batch("items", "run-1", "full")
