"""sync_all_job: each entity's chain after its parents' chains, then retries, children first."""

import itertools

import dagster as dg

from syncflow_dagster_tests.orchestration.conftest import PARTITION, STAGES, SyncHarness


def upstream(job: dg.JobDefinition, node: str) -> set[str]:
    deps = job.graph.dependency_structure.all_upstream_outputs_from_node(node)
    return {d.node_name for d in deps}


def test_sync_all_is_parent_first_chains_then_retries_children_first(harness: SyncHarness) -> None:
    job = harness.defs.get_job_def("sync_all_job")
    order = harness.entities
    assert order.index("items") < order.index("work_orders") < order.index("work_order_operations")
    assert order.index("work_centers") < order.index("work_order_operations")
    nodes = {n.name for n in job.graph.nodes}
    assert nodes == {f"{e}__{s}" for e in order for s in (*STAGES, "retry_pending")}
    for entity in order:
        parents = {p.entity for p in harness.catalog[entity].parents}
        assert upstream(job, f"{entity}__fetch") == {f"{p}__track" for p in parents}
        for before, after in itertools.pairwise(STAGES):
            assert upstream(job, f"{entity}__{after}") == {f"{entity}__{before}"}
    retries = [f"{e}__retry_pending" for e in reversed(order)]
    assert upstream(job, retries[0]) == {f"{e}__track" for e in order}
    for before, after in itertools.pairwise(retries):
        assert upstream(job, after) == {before}


def test_sync_all_runs_every_entity_parent_first_and_ends_with_the_retry_ops(
    harness: SyncHarness,
) -> None:
    result = harness.run_all()
    assert result.success
    order = harness.entities
    started = [
        e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START
    ]
    finished = [
        e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_SUCCESS
    ]
    assert len(started) == len(finished) == len(order) * (len(STAGES) + 1)
    for entity in order:
        for parent in harness.catalog[entity].parents:
            assert finished.index(f"{parent.entity}__track") < started.index(f"{entity}__fetch")
    retries = [f"{e}__retry_pending" for e in reversed(order)]
    assert started[-len(retries) :] == retries
    last_track = max(finished.index(f"{e}__track") for e in order)
    assert last_track < started.index(retries[0])

    batches = harness.batches_of_run(result.run_id)
    assert [(b["entity"], b["mode"]) for b in batches] == [
        *((e, "incremental") for e in order),
        *((e, "retry") for e in reversed(order)),
    ]
    for batch in batches:
        assert batch["status"] == "succeeded", batch["error"]
        assert batch["partition_key"] == PARTITION
        entered = batch["fetched"] + batch["resolved_children"]
        landed = sum(
            batch[m]
            for m in (
                "inserted",
                "updated",
                "deleted",
                "unchanged",
                "pending_children",
                "dead_lettered",
            )
        )
        assert entered == landed, batch
    for batch in batches[len(order) :]:
        # Nothing waited for a parent that arrived later: the retries had nothing to send.
        assert batch["fetched"] == batch["ingested"] == 0
    for entity in order:
        mats = result.asset_materializations_for_node(f"{entity}__track")
        assert [m.asset_key for m in mats] == [dg.AssetKey(["schedulehub", entity])]
        assert mats[0].partition == PARTITION
    check = harness.reconcile()
    assert check.ok, check.problems
