"""A batch the hub never answers (after the client's retries) becomes transient dead letters,
which the failed-records sensor retries once the hub is back; the rest of the run goes on."""

import time

import dagster as dg
import orjson
import polars as pl

from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.emulators.common.faults import FaultPlan
from syncflow_dagster.orchestration.resources import StateStoreResource
from syncflow_dagster_tests.orchestration.conftest import MakeHarness

SPEC = DatasetSpec(seed=29, work_orders=100, operations_per_order=0, bad_fraction=0.0)


def test_an_unanswered_batch_is_dead_lettered_and_retried_by_the_sensor(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(SPEC, max_retries=1, default_batch_size=25, sync_worker_threads=1)
    assert h.run_entity("items").success
    # The second batch of work orders gets 503 twice (its one retry too); the others go through.
    h.hub.injector.plan = FaultPlan.parse("only=/api/v1/ingest,at=2:503;3:503")
    h.hub.injector.count = 0
    assert h.run_entity("work_orders").success
    h.hub.injector.plan = FaultPlan()
    batch = h.last_batch("work_orders")
    assert batch["status"] == "succeeded", batch["error"]
    assert (batch["inserted"], batch["ingest_failed"], batch["dead_lettered"]) == (75, 25, 25)
    assert batch["hub_unsettled"]  # an unanswered batch may have been applied
    letters = h.store.list_failed("work_orders")
    assert letters.height == 25
    assert set(letters.get_column("code")) == {"hub_unavailable"}
    assert set(letters.get_column("error_kind")) == {"transient"}
    assert letters.get_column("raw").null_count() == 0
    assert letters.get_column("next_retry_at").null_count() == 0

    # Before the retry the ERP deletes one of those orders: retrying its letter must not
    # bring it back to the hub.
    gone_key = orjson.loads(letters.item(0, "source_key"))["WO_NO"]
    h.api.dataset.delete_keys("work_orders", [[gone_key]])
    assert h.run_entity("work_orders").success  # the next sync reconciles with the hub
    time.sleep(0.1)  # the letters' first backoff elapses
    sensor = h.defs.get_sensor_def("failed_records_sensor")
    resources = {"state": StateStoreResource(database_url=h.database_url)}
    with dg.build_sensor_context(resources=resources) as context:
        result = sensor(context)
    [request] = result.run_requests or []  # type: ignore[union-attr]
    assert request.job_name == "resolve_failed_records_job"
    assert request.tags["syncflow/entity"] == "work_orders"
    config = request.run_config["ops"]["resolve_failed_records"]["config"]
    assert sorted(config["ids"]) == sorted(letters.get_column("id").to_list())
    assert config["action"] == "retry"

    assert h.run_job("resolve_failed_records_job", request.run_config).success
    assert h.store.list_failed("work_orders").height == 0  # none open any more
    closed = h.store.list_failed("work_orders", status=None)
    assert (closed.get_column("status") == "resolved").all()
    obsolete = closed.filter(pl.col("resolution").str.contains("no longer has the record"))
    assert obsolete.height == 1
    check = h.reconcile(["items", "work_orders"])
    assert check.ok, check.problems
    assert pl.Series(h.store.unreconciled_batches("work_orders")).len() == 0
