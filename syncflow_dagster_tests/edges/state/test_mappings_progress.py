import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from syncflow_dagster.edges.state import BackgroundRow, BackgroundRowNotFoundError, StateStore
from syncflow_dagster.edges.state.mappings import config_hash
from syncflow_dagster.edges.state.tables import field_mappings


def test_register_mapping_versions(store: StateStore) -> None:
    config = {"fields": [{"source": "ITEM_NO", "target": "code"}], "key": ["ITEM_NO"]}
    assert store.register_mapping("items", config) == 1
    reordered = {"key": ["ITEM_NO"], "fields": [{"target": "code", "source": "ITEM_NO"}]}
    assert store.register_mapping("items", reordered) == 1  # same canonical config
    changed = {**config, "key": ["ITEM_NO", "PLANT"]}
    assert store.register_mapping("items", changed) == 2
    assert store.register_mapping("items", config) == 1  # going back reuses the version
    assert store.register_mapping("work_orders", config) == 1  # numbered per entity
    assert store.latest_mapping_version("items") == 2
    assert store.latest_mapping_version("routings") is None
    assert store.get_mapping("items", 2) == changed
    assert store.get_mapping("items", 3) is None
    with store.engine.connect() as conn:
        stored = conn.execute(
            select(field_mappings.c.config, field_mappings.c.config_hash).where(
                field_mappings.c.entity == "items", field_mappings.c.version == 1
            )
        ).one()
    assert json.loads(stored.config) == config
    assert stored.config_hash == config_hash(reordered)
    assert len(stored.config_hash) == 64


def test_background_rows_round_trip(store: StateStore) -> None:
    assert store.get_background("work_orders") is None
    row = BackgroundRow("work_orders", "19:00", "07:00", "Europe/Berlin", rows_per_night=1_000_000)
    assert store.insert_background(row)
    assert not store.insert_background(row, if_absent=True)  # idempotent
    got = store.get_background("work_orders")
    assert got is not None and got.updated_at is not None
    assert (got.status, got.rows_done, got.on_hold, got.mode) == (
        "pending",
        0,
        False,
        "incremental",
    )
    started = datetime(2024, 6, 1, 17, 0, tzinfo=UTC)
    saved = store.update_background(
        "work_orders",
        status="paused",
        rows_done=2_500_000,
        rows_total=7_000_000,
        started_at=started,
    )
    assert (saved.status, saved.rows_done, saved.started_at) == ("paused", 2_500_000, started)
    with pytest.raises(ValueError, match="status"):
        store.update_background("work_orders", status="sleeping")
    with pytest.raises(BackgroundRowNotFoundError):
        store.update_background("items", status="done")
    store.insert_background(BackgroundRow("items", "22:00", "05:00", "UTC"))
    assert [r.entity for r in store.list_background()] == ["items", "work_orders"]
    assert store.delete_background("items") and not store.delete_background("items")
