import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from syncflow_dagster.edges.state import Progress, StateStore
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


def test_progress_round_trip(store: StateStore) -> None:
    assert store.get_progress("work_orders", "2024-06-01") is None
    start = datetime(2024, 6, 1, 17, 0, tzinfo=UTC)
    end = datetime(2024, 6, 2, 5, 0, tzinfo=UTC)
    saved = store.save_progress(
        Progress(
            "work_orders",
            "2024-06-01",
            "running",
            rows_total=7_000_000,
            window_start=start,
            window_end=end,
            nights_used=1,
        )
    )
    assert saved.started_at is not None and saved.updated_at is not None
    assert saved.finished_at is None
    assert store.get_progress("work_orders", "2024-06-01") == saved

    paused = store.save_progress(
        replace(saved, status="paused", cursor="rv:123456", rows_done=2_500_000)
    )
    got = store.get_progress("work_orders", "2024-06-01")
    assert got == paused
    assert got is not None
    assert (got.cursor, got.rows_done, got.started_at) == ("rv:123456", 2_500_000, saved.started_at)

    done = store.save_progress(
        replace(got, status="done", cursor=None, rows_done=7_000_000, nights_used=2)
    )
    assert done.finished_at is not None
    assert store.get_progress("work_orders", "2024-06-01") == done
    store.save_progress(Progress("work_orders", "2024-06-02"))
    store.save_progress(Progress("items", "2024-06-01"))
    assert [p.partition_key for p in store.list_progress("work_orders")] == [
        "2024-06-01",
        "2024-06-02",
    ]
    assert len(store.list_progress()) == 3
    with pytest.raises(ValueError, match="status"):
        store.save_progress(Progress("items", "x", status="sleeping"))
