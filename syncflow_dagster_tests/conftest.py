"""Fixtures shared by the whole suite: a throwaway PostgreSQL, fresh databases."""

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncflow_dagster.testing.postgres import PostgresCluster, postgres_cluster

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """One throwaway PostgreSQL cluster for the test session (per xdist worker)."""
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: PostgresCluster) -> str:
    """A SQLAlchemy URL of a fresh, empty PostgreSQL database."""
    return pg_cluster.create_database(f"t{next(_db_counter)}")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLAlchemy URL of a fresh, empty SQLite file."""
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh empty database URL, once for PostgreSQL and once for SQLite."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return str(request.getfixturevalue("sqlite_url"))
