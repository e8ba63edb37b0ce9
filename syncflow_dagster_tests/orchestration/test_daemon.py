"""With a real Dagster daemon: a child that arrived before its parent is delivered by a sensor.

Nobody launches the child's retry: the parent's sync succeeds, the
``parent_synced_sensor`` sees it and launches ``retry_work_orders_job``, which
sends the waiting work order. Every run goes through the run queue with no run
config (``dagster job launch``), as a user's or a schedule's would.
"""

from pathlib import Path

import dagster as dg

from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.testing.apismith import running_apismith
from syncflow_dagster.testing.dagster_daemon import local_deployment
from syncflow_dagster.testing.schedulehub import running_schedulehub
from syncflow_dagster_tests.orchestration.conftest import APISMITH_TOKEN, SCHEDULEHUB_TOKEN


def test_a_sensor_delivers_the_child_once_its_parent_is_synced(tmp_path: Path, pg_url: str) -> None:
    StateStore(pg_url).migrate()
    spec = DatasetSpec(seed=12, work_orders=40, operations_per_order=1, bad_fraction=0)
    with (
        running_apismith(spec, token=APISMITH_TOKEN) as api,
        running_schedulehub(token=SCHEDULEHUB_TOKEN) as hub,
    ):
        env = {
            "APISMITH_URL": api.url,
            "SCHEDULEHUB_URL": hub.url,
            "APISMITH_TOKEN": APISMITH_TOKEN,
            "SCHEDULEHUB_TOKEN": SCHEDULEHUB_TOKEN,
            "DATABASE_URL": pg_url,
            "SENSOR_INTERVAL_SECONDS": "2",
            "RETRY_DELAY_SECONDS": "1",
            "MAX_RETRY_DELAY_SECONDS": "5",
            "BACKGROUND_SYNC_ENABLED": "true",
        }
        with local_deployment(tmp_path, env) as world:
            world.launch("sync_all_job")
            first = world.finished_run("sync_all_job")
            assert first.status == dg.DagsterRunStatus.SUCCESS, world.tail()
            store = StateStore(pg_url)
            at_hub = hub.store.count("work_orders")

            # The ERP gains a work order before its item: its sync leaves it waiting.
            api.dataset.insert_rows(
                "work_orders", [{"WO_NO": "WO-DMN00001", "ITEM_NO": "ITM-DMN01"}]
            )
            world.launch("sync_work_orders_job")
            waiting = world.finished_run("sync_work_orders_job")
            assert waiting.status == dg.DagsterRunStatus.SUCCESS, world.tail()
            assert store.count_pending("work_orders") == 1
            assert hub.store.count("work_orders") == at_hub

            # The item arrives and its sync runs; no one launches anything for the child.
            api.dataset.insert_rows("items", [{"ITEM_NO": "ITM-DMN01"}])
            world.launch("sync_items_job")
            parent = world.finished_run("sync_items_job")
            assert parent.status == dg.DagsterRunStatus.SUCCESS, world.tail()
            world.wait_for(
                "the waiting work order at the hub",
                lambda: hub.store.count("work_orders") == at_hub + 1,
                timeout=120,
            )
            assert store.count_pending("work_orders") == 0
            retries = world.runs("retry_work_orders_job")
            assert retries, "the child reached the hub without a retry run"
            # Every retry run was launched by a sensor, none by hand; the last one delivered.
            triggers = {run.tags["syncflow/trigger"] for run in retries}
            assert triggers <= {"parent_synced", "pending_children_sensor"}, triggers
            delivered = world.finished_run("retry_work_orders_job", after=len(retries) - 1)
            assert delivered.status == dg.DagsterRunStatus.SUCCESS, world.tail()
            batch = store.recent_batches("work_orders", limit=1)[0]
            assert (batch["mode"], batch["inserted"], batch["resolved_children"]) == ("retry", 1, 1)
            store.dispose()
