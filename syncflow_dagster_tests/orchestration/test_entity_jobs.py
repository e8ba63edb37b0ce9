"""Each entity's job end to end: real HTTP on both sides, state in PostgreSQL, parents first."""

import gc
from typing import Any

import dagster as dg
import pytest

from syncflow_dagster.metrics import METRIC_NAMES
from syncflow_dagster_tests.orchestration.conftest import (
    APISMITH_TOKEN,
    PARTITION,
    SCHEDULEHUB_TOKEN,
    STAGES,
    SyncHarness,
)


def landed(batch: dict[str, Any]) -> int:
    """Where a batch's records ended up, without deletes."""
    return (
        batch["inserted"]
        + batch["updated"]
        + batch["unchanged"]
        + batch["pending_children"]
        + batch["dead_lettered"]
    )


def assert_adds_up(batch: dict[str, Any]) -> None:
    """The batch's metrics obey conservation (no deletes, no released children)."""
    assert batch["status"] == "succeeded", batch["error"]
    assert batch["error"] is None
    assert batch["fetched"] == landed(batch), batch
    assert batch["dead_lettered"] == (
        batch["normalize_failed"]
        + batch["validation_failed"]
        + batch["map_failed"]
        + batch["ingest_failed"]
    )
    # Acknowledged: created, updated, deleted, and what the hub already had.
    assert batch["ingested"] >= batch["inserted"] + batch["updated"] + batch["deleted"]


def test_each_entity_job_end_to_end_parent_first(harness: SyncHarness) -> None:
    done: list[str] = []
    for entity in harness.entities:
        result = harness.run_entity(entity)
        assert result.success
        assert gc.get_freeze_count() == 0, "the run let its frozen objects back to the collector"
        done.append(entity)

        check = harness.reconcile(done)
        assert check.ok, check.problems
        have, want = check.counts[entity]
        assert have == want > 0

        batch = harness.last_batch(entity)
        assert batch["run_id"] == result.run_id
        assert batch["entity"] == entity
        assert batch["partition_key"] == PARTITION
        assert batch["mode"] == "incremental"  # every shipped entity is configured incremental
        assert batch["finished_at"] is not None
        assert batch["watermark_to"] is not None
        assert_adds_up(batch)
        assert batch["fetched"] > 0
        assert batch["inserted"] == want == harness.hub_count(entity)
        assert batch["updated"] == batch["unchanged"] == batch["deleted"] == 0
        assert batch["ingested"] == batch["inserted"]
        assert harness.store.count_state(entity) == want
        assert harness.store.count_failed(entity) == batch["dead_lettered"]
        assert harness.store.count_pending(entity) == batch["pending_children"]

        # Every op ran, in order; the run's batch is charted as a materialization.
        steps = [
            e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START
        ]
        assert steps == list(STAGES)
        mats = result.asset_materializations_for_node("track")
        assert len(mats) == 1
        assert mats[0].asset_key == dg.AssetKey(["schedulehub", entity])
        assert mats[0].partition == PARTITION
        assert mats[0].metadata["batch_id"].value == batch["id"]
        assert mats[0].metadata["inserted"].value == batch["inserted"]
        track_meta = {
            k: v.value
            for e in result.events_for_node("track")
            if e.event_type == dg.DagsterEventType.STEP_OUTPUT
            for k, v in e.step_output_data.metadata.items()
        }
        for name in METRIC_NAMES:
            if name != "duration_ms":
                assert track_meta[name] == batch[name], name

    for entity in harness.entities:
        records = harness.instance.fetch_materializations(
            dg.AssetKey(["schedulehub", entity]), limit=10
        ).records
        assert len(records) == 1
        assert records[0].partition_key == PARTITION
        assert records[0].asset_materialization is not None
        assert records[0].asset_materialization.partition == PARTITION
    # Some of the deliberately bad rows are in the ERP; they are dead letters, not a crash.
    assert harness.store.count_failed() > 0
    # Tokens never reach Dagster's event log.
    for result in harness.results:
        logs = "\n".join(str(e) for e in harness.instance.all_logs(result.run_id))
        assert APISMITH_TOKEN not in logs and SCHEDULEHUB_TOKEN not in logs


@pytest.mark.parametrize("mode", ["incremental", "full"])
def test_a_rerun_without_erp_changes_sends_nothing(harness: SyncHarness, mode: str) -> None:
    first = harness.sync_parent_first()
    hub_before = {e: harness.hub_hashes(e) for e in harness.entities}
    second = harness.sync_parent_first(mode)
    for entity in harness.entities:
        batch = second[entity]
        assert batch["id"] > first[entity]["id"]
        assert batch["mode"] == mode
        assert_adds_up(batch)
        assert batch["ingested"] == 0, batch
        assert batch["inserted"] == batch["updated"] == batch["deleted"] == 0, batch
        assert batch["resolved_children"] == 0
        if mode == "full":
            assert batch["fetched"] == first[entity]["fetched"]
            assert batch["unchanged"] == first[entity]["inserted"]
        else:
            assert batch["fetched"] == 0
        assert batch["watermark_to"] == first[entity]["watermark_to"]
        assert harness.hub_hashes(entity) == hub_before[entity]
        # Children still waiting for a parent keep waiting (once).
        assert harness.store.count_pending(entity) == first[entity]["pending_children"]
    check = harness.reconcile()
    assert check.ok, check.problems
