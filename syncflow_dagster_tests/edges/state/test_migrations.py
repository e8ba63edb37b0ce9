import os
import subprocess
import sys
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from polars.testing import assert_frame_equal
from sqlalchemy import Column, MetaData, String, bindparam, inspect, text

from syncflow_dagster.edges.state import StateStore, metadata, migrate
from syncflow_dagster.edges.state.engine import create_state_engine
from syncflow_dagster.edges.state.migrate import alembic_config
from syncflow_dagster.edges.state.types import BkHash, DataHash

from .conftest import state_rows

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


def _raw_state(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_state_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql)]
    finally:
        engine.dispose()


def test_upgrade_to_entity_ids_keeps_every_state_row(db_url: str) -> None:
    """0001 -> 0002 moves state keyed by entity name to entity ids; nothing is lost."""
    migrate(db_url, "0001")
    items, orders = state_rows(300), state_rows(200, offset=1_000)
    engine = create_state_engine(db_url)
    try:
        with engine.begin() as conn:
            for entity, rows, batch in (("items", items, 1), ("work_orders", orders, 2)):
                conn.execute(
                    text(
                        "INSERT INTO erp_sync_state"
                        " (entity, bk_hash, data_hash, rowversion, last_batch_id)"
                        " VALUES (:entity, :bk, :data, :rv, :batch)"
                    ).bindparams(
                        bindparam("bk", type_=BkHash()), bindparam("data", type_=DataHash())
                    ),
                    [
                        {"entity": entity, "bk": bk, "data": data, "rv": rv, "batch": batch}
                        for bk, data, rv in rows.iter_rows()
                    ],
                )
    finally:
        engine.dispose()
    migrate(db_url)
    assert _diff(db_url, metadata) == []
    assert sorted(_raw_state(db_url, "SELECT name FROM sync_entities")) == [
        ("items",),
        ("work_orders",),
    ]
    with StateStore(db_url) as store:
        for entity, rows in (("items", items), ("work_orders", orders)):
            assert_frame_equal(store.load_state(entity).sort("bk_hash"), rows.sort("bk_hash"))
        assert store.keys_stamped_through("items", 1).len() == 300
        assert store.keys_stamped_through("work_orders", 1).len() == 0
        # New entities get their own id next to the migrated ones.
        store.upsert_state("work_centers", state_rows(5, offset=5_000), 3)
        assert store.count_state("work_centers") == 5
        assert store.count_state("items") == 300


def test_downgrade_from_entity_ids_keeps_every_state_row(db_url: str) -> None:
    with StateStore(db_url) as store:
        store.migrate()
        store.upsert_state("items", state_rows(30), 1)
        store.upsert_state("work_orders", state_rows(20, offset=100), 2)
        engine = store.engine
        with engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "0001")
    counts = _raw_state(db_url, "SELECT entity, count(*) FROM erp_sync_state GROUP BY entity")
    assert sorted(counts) == [("items", 30), ("work_orders", 20)]
    engine = create_state_engine(db_url)
    try:
        assert "sync_entities" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
