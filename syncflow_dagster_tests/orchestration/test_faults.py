"""Transient faults on both sides (429, 503, dropped connections, lost answers) change nothing."""

import uuid
from typing import Any

from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.testing.postgres import PostgresCluster
from syncflow_dagster_tests.orchestration.conftest import MakeHarness, SyncHarness

SPEC = DatasetSpec(seed=23, work_orders=1000, bad_fraction=0.02)
KINDS = {"429", "503", "drop", "lost"}
API_FAULTS = "retry_after=0,at=1:429;3:drop;6:lost;8:503"
"""APISmith gets a handful of requests per run (one page per entity): each kind by schedule,
the first on the entity list, then on the record pages of items, work centers, work orders."""
HUB_FAULTS = (
    "429=0.05,503=0.05,drop=0.03,lost=0.03,retry_after=0,seed=3,at=1:429;2:503;3:drop;4:lost;6:lost"
)
"""Random faults on every hub request; the schedule makes sure of each kind (the 6th request
is the first ingest batch: its answer is lost after the hub applied it)."""
BATCH_SIZE = 100
"""Small ingest batches: dozens of hub requests for the faults to hit."""


def outcome(h: SyncHarness) -> dict[str, Any]:
    """What a sync left behind: hub contents, dead letters, waiting children, state."""
    return {
        entity: {
            "hub": h.hub_hashes(entity),
            "failed": h.store.count_failed(entity),
            "pending": h.store.count_pending(entity),
            "state": h.store.count_state(entity),
        }
        for entity in h.entities
    }


def received(batch: dict[str, Any]) -> tuple[int, ...]:
    """The metrics that do not depend on how often a batch had to be resent."""
    return (
        batch["fetched"],
        batch["dead_lettered"],
        batch["pending_children"],
        batch["inserted"] + batch["updated"] + batch["unchanged"],
        batch["deleted"],
    )


def test_faults_on_both_sides_give_the_same_result_as_none(
    make_harness: MakeHarness, pg_cluster: PostgresCluster
) -> None:
    calm = make_harness(SPEC, default_batch_size=BATCH_SIZE)
    calm_batches = calm.sync_parent_first()
    check = calm.reconcile()
    assert check.ok, check.problems

    stormy = make_harness(
        SPEC,
        api_faults=API_FAULTS,
        hub_faults=HUB_FAULTS,
        database_url=pg_cluster.create_database(f"faults_{uuid.uuid4().hex[:12]}"),
        default_batch_size=BATCH_SIZE,
    )
    stormy_batches = stormy.sync_parent_first()
    check = stormy.reconcile()
    assert check.ok, check.problems

    assert outcome(stormy) == outcome(calm)
    for entity in calm.entities:
        assert stormy_batches[entity]["status"] == "succeeded"
        assert received(stormy_batches[entity]) == received(calm_batches[entity]), entity

    for side in (stormy.api.injector, stormy.hub.injector):
        assert {kind for _, kind, _ in side.injected} >= KINDS, side.injected
    api_hits = {(kind, path) for _, kind, path in stormy.api.injector.injected}
    # Record pages were cut off mid-body and lost, and read again.
    for kind in ("drop", "lost"):
        assert any(k == kind and p.endswith("/records") for k, p in api_hits), api_hits
    hub_hits = {(kind, path) for _, kind, path in stormy.hub.injector.injected}
    # Ingest requests were hit too, including answers lost after the hub applied the batch.
    assert any(path.startswith("/api/v1/ingest/") for _, path in hub_hits), hub_hits
    for lost in ("drop", "lost"):
        assert any(
            kind == lost and path.startswith("/api/v1/ingest/") for kind, path in hub_hits
        ), hub_hits
    # A faulted fetch page was read again: the ERP side saw more requests than the calm run.
    assert stormy.api.injector.count > calm.api.injector.count
