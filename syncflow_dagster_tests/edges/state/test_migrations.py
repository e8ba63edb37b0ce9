import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, MetaData, String, inspect

from syncflow_dagster.edges.state import metadata, migrate
from syncflow_dagster.edges.state.engine import create_state_engine

REPO = Path(__file__).resolve().parents[3]


def _diff(url: str, target: MetaData) -> list[object]:
    engine = create_state_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, target))
    finally:
        engine.dispose()


def test_upgrade_head_builds_exactly_the_metadata(db_url: str) -> None:
    migrate(db_url)
    assert _diff(db_url, metadata) == []
    engine = create_state_engine(db_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert tables == {*metadata.tables, "alembic_version"}


def test_migrate_twice_is_a_no_op(db_url: str) -> None:
    migrate(db_url)
    migrate(db_url)
    assert _diff(db_url, metadata) == []


def test_comparison_sees_a_difference(db_url: str) -> None:
    """Guard the guard: a changed metadata must not compare equal."""
    migrate(db_url)
    changed = MetaData()
    for table in metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["erp_sync_state"].append_column(Column("extra", String(10)))
    assert _diff(db_url, changed) != []


def test_alembic_cli_uses_database_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    assert _diff(url, metadata) == []
