from datetime import UTC, datetime, timedelta

import pytest

from syncflow_dagster.edges.state import METRIC_NAMES, BatchNotFoundError, StateStore


def test_metric_names() -> None:
    assert len(METRIC_NAMES) == 21
    assert METRIC_NAMES[0] == "fetched" and METRIC_NAMES[-1] == "duration_ms"


def test_start_get_and_finish(store: StateStore) -> None:
    before = datetime.now(UTC)
    batch_id = store.start_batch("items", "run-1", "incremental", "2024-05-01", 3)
    batch = store.get_batch(batch_id)
    assert batch["entity"] == "items"
    assert batch["run_id"] == "run-1"
    assert batch["mode"] == "incremental"
    assert batch["partition_key"] == "2024-05-01"
    assert batch["mapping_version"] == 3
    assert batch["status"] == "running"
    assert batch["finished_at"] is None
    assert before - timedelta(seconds=1) <= batch["started_at"] <= datetime.now(UTC)
    assert all(batch[name] == 0 for name in METRIC_NAMES)

    store.update_metrics(batch_id, {"fetched": 10, "normalized": 9})
    store.finish_batch(
        batch_id,
        "succeeded",
        {"normalized": 8, "inserted": 5, "unchanged": 3, "dead_lettered": 2},
        watermark_from=100,
        watermark_to=250,
    )
    batch = store.get_batch(batch_id)
    assert batch["status"] == "succeeded"
    assert batch["finished_at"] >= batch["started_at"]
    assert (batch["watermark_from"], batch["watermark_to"], batch["error"]) == (100, 250, None)
    metrics = store.batch_metrics(batch_id)
    assert metrics["fetched"] == 10  # set while running, kept
    assert metrics["normalized"] == 8  # overwritten at the end
    assert metrics["inserted"] == 5
    assert metrics["duration_ms"] >= 0
    assert set(metrics) == set(METRIC_NAMES)


def test_explicit_duration_and_failure(store: StateStore) -> None:
    batch_id = store.start_batch("items", "run-2", "full")
    store.finish_batch(batch_id, "failed", {"duration_ms": 1234}, error="hub down")
    batch = store.get_batch(batch_id)
    assert (batch["status"], batch["error"], batch["duration_ms"]) == ("failed", "hub down", 1234)
    with pytest.raises(ValueError, match="already failed"):
        store.finish_batch(batch_id, "succeeded")


def test_bad_input_is_refused(store: StateStore) -> None:
    with pytest.raises(ValueError, match="mode"):
        store.start_batch("items", "run", "sometimes")
    batch_id = store.start_batch("items", "run", "retry")
    with pytest.raises(ValueError, match="unknown batch metric"):
        store.finish_batch(batch_id, "succeeded", {"fetchd": 1})
    with pytest.raises(ValueError, match="non-negative"):
        store.update_metrics(batch_id, {"fetched": -1})
    with pytest.raises(ValueError, match="finishes"):
        store.finish_batch(batch_id, "running")
    with pytest.raises(BatchNotFoundError):
        store.get_batch(99_999)
    with pytest.raises(BatchNotFoundError):
        store.finish_batch(99_999, "succeeded")
    with pytest.raises(BatchNotFoundError):
        store.update_metrics(99_999, {"fetched": 1})
    assert store.get_batch(batch_id)["status"] == "running"


def test_recent_batches_and_last_watermark(store: StateStore) -> None:
    assert store.last_watermark("items") is None
    ids = []
    for i, (status, mark) in enumerate(
        [("succeeded", 100), ("succeeded", 300), ("failed", 900), ("succeeded", None)]
    ):
        batch_id = store.start_batch("items", f"run-{i}", "incremental")
        store.finish_batch(batch_id, status, watermark_to=mark)
        ids.append(batch_id)
    other = store.start_batch("work_orders", "run-x", "full")
    store.finish_batch(other, "succeeded", watermark_to=5_000)
    store.start_batch("items", "run-running", "full")  # still running: not settled

    assert store.last_watermark("items") == 300  # failed batches never advance it
    assert store.last_watermark("work_orders") == 5_000
    recent = store.recent_batches("items", limit=3)
    assert [b["run_id"] for b in recent] == ["run-running", "run-3", "run-2"]
    assert len(store.recent_batches(limit=100)) == 6


def test_last_batch_of_other_mapping(store: StateStore) -> None:
    first = store.start_batch("items", "r1", "full", mapping_version=1)
    second = store.start_batch("items", "r2", "incremental", mapping_version=2)
    store.start_batch("items", "r3", "incremental", mapping_version=2)
    store.start_batch("work_orders", "r4", "full", mapping_version=5)
    assert store.last_batch_of_other_mapping("items", 2) == first
    assert store.last_batch_of_other_mapping("items", 1) == second + 1
    assert store.last_batch_of_other_mapping("work_orders", 5) is None
    assert store.last_batch_of_other_mapping("nothing", 1) is None


def test_running_batches_and_abandoning_one(store: StateStore) -> None:
    dead = store.start_batch("items", "r1", "full")
    other = store.start_batch("work_orders", "r2", "full")
    current = store.start_batch("items", "r3", "incremental")
    assert [(b["id"], b["run_id"]) for b in store.running_batches("items")] == [
        (dead, "r1"),
        (current, "r3"),
    ]
    assert store.abandon_batch(dead, "its run is no longer running")
    assert not store.abandon_batch(dead, "twice")
    batch = store.get_batch(dead)
    assert (batch["status"], batch["watermark_to"]) == ("failed", None)
    assert batch["error"] == "abandoned: its run is no longer running"
    assert store.get_batch(current)["status"] == "running"
    assert store.get_batch(other)["status"] == "running"
