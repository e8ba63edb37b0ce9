"""With a real Dagster daemon: a child that arrived before its parent is delivered by a sensor.

Nobody launches the child's retry: the parent's sync succeeds, the
``parent_synced_sensor`` sees it and launches ``retry_work_orders_job``, which
sends the waiting work order. Every run goes through the run queue with no run
config (``dagster job launch``), as a user's or a schedule's would.
"""

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from syncflow_dagster.background import schedules as bg
from syncflow_dagster.background.schedules import BackgroundDefaults
from syncflow_dagster.config.loader import load_catalog
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.settings import load_settings
from syncflow_dagster.testing.apismith import running_apismith
from syncflow_dagster.testing.dagster_daemon import local_deployment
from syncflow_dagster.testing.schedulehub import running_schedulehub
from syncflow_dagster_tests.orchestration.conftest import APISMITH_TOKEN, SCHEDULEHUB_TOKEN


def _hold_background_syncs(pg_url: str) -> None:
    """Hold the shipped background syncs: their sensor would launch runs in tonight's window."""
    store = StateStore(pg_url)
    settings = load_settings()
    catalog = load_catalog(settings.entities_dir)
    defaults = BackgroundDefaults.from_settings(settings)
    for schedule in bg.list_schedules(store, catalog, defaults):
        bg.pause_schedule(store, catalog, defaults, schedule.entity, "not in this test")
    store.dispose()


def test_a_sensor_delivers_the_child_once_its_parent_is_synced(tmp_path: Path, pg_url: str) -> None:
    StateStore(pg_url).migrate()
    _hold_background_syncs(pg_url)
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
            [batch] = [b for b in store.recent_batches("work_orders") if b["inserted"]][:1]
            assert (batch["mode"], batch["inserted"], batch["resolved_children"]) == ("retry", 1, 1)
            delivered = world.instance.get_run_by_id(batch["run_id"])
            assert delivered is not None and delivered.job_name == "retry_work_orders_job"
            store.dispose()


def test_a_run_that_failed_for_a_transient_reason_is_retried_by_the_daemon(
    tmp_path: Path, pg_url: str
) -> None:
    StateStore(pg_url).migrate()
    _hold_background_syncs(pg_url)
    spec = DatasetSpec(seed=13, work_orders=40, operations_per_order=0, bad_fraction=0)
    # The first ingest request and its one retry get 503: the run fails, transiently.
    down = "only=/api/v1/ingest,at=1:503;2:503"
    with (
        running_apismith(spec, token=APISMITH_TOKEN) as api,
        running_schedulehub(token=SCHEDULEHUB_TOKEN, faults=down) as hub,
    ):
        env = {
            "APISMITH_URL": api.url,
            "SCHEDULEHUB_URL": hub.url,
            "APISMITH_TOKEN": APISMITH_TOKEN,
            "SCHEDULEHUB_TOKEN": SCHEDULEHUB_TOKEN,
            "DATABASE_URL": pg_url,
            "MAX_RETRIES": "1",
            "RETRY_DELAY_SECONDS": "0.1",
            "MAX_RETRY_DELAY_SECONDS": "1",
        }
        with local_deployment(tmp_path, env) as world:
            world.launch("sync_items_job")
            failed = world.finished_run("sync_items_job")
            assert failed.status == dg.DagsterRunStatus.FAILURE
            retried = world.finished_run("sync_items_job", after=1)
            assert retried.status == dg.DagsterRunStatus.SUCCESS, world.tail()
            assert retried.tags.get("dagster/parent_run_id") == failed.run_id
            store = StateStore(pg_url)
            first, second = sorted(store.recent_batches("items"), key=lambda b: b["id"])
            assert (first["status"], first["error_kind"]) == ("failed", "transient")
            assert second["status"] == "succeeded"
            assert hub.store.count("items") == spec.n_items
            store.dispose()


def test_a_configuration_error_is_not_retried(tmp_path: Path, pg_url: str) -> None:
    """A permanent failure fails the same way again: the daemon leaves it to a person."""
    StateStore(pg_url).migrate()
    _hold_background_syncs(pg_url)
    spec = DatasetSpec(seed=14, work_orders=20, operations_per_order=0, bad_fraction=0)
    with (
        running_apismith(spec, token=APISMITH_TOKEN) as api,
        running_schedulehub(token=SCHEDULEHUB_TOKEN) as hub,
    ):
        env = {
            "APISMITH_URL": api.url,
            "SCHEDULEHUB_URL": hub.url,
            "APISMITH_TOKEN": "not-the-token",  # 401: permanent
            "SCHEDULEHUB_TOKEN": SCHEDULEHUB_TOKEN,
            "DATABASE_URL": pg_url,
        }
        with local_deployment(tmp_path, env) as world:
            world.launch("sync_items_job")
            failed = world.finished_run("sync_items_job")
            assert failed.status == dg.DagsterRunStatus.FAILURE
            time.sleep(8)  # the daemon had its chance to retry
            assert len(world.runs("sync_items_job")) == 1


def test_the_background_sensor_launches_a_night_in_the_window_with_a_real_daemon(
    tmp_path: Path, pg_url: str
) -> None:
    """A background sync whose window is open now: the daemon's sensor runs it to done."""
    store = StateStore(pg_url)
    store.migrate()
    now = datetime.now(UTC)
    start, end = (
        (now - timedelta(hours=1)).strftime("%H:%M"),
        (now + timedelta(hours=2)).strftime("%H:%M"),
    )
    spec = DatasetSpec(seed=15, work_orders=3_000, operations_per_order=0, bad_fraction=0)
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
            "BACKGROUND_CHUNK_ROWS": "1000",
            "ERP_TIMEZONE": "UTC",
        }
        settings = load_settings(**{k.lower(): v for k, v in env.items()})
        catalog = load_catalog(settings.entities_dir)
        defaults = BackgroundDefaults.from_settings(settings)
        # Items first (their cadence schedule runs at :15); the orders in the background.
        bg.update_schedule(
            store, catalog, defaults, "work_orders", window_start=start, window_end=end
        )
        bg.pause_schedule(store, catalog, defaults, "work_order_operations", "not in this test")
        with local_deployment(tmp_path, env) as world:
            world.launch("sync_items_job")
            assert world.finished_run("sync_items_job").status == dg.DagsterRunStatus.SUCCESS
            night = world.finished_run("sync_work_orders_background_job", timeout=240)
            assert night.status == dg.DagsterRunStatus.SUCCESS, world.tail()
            assert night.tags["syncflow/trigger"] == "background_sync_sensor"
            row = store.get_background("work_orders")
            assert row is not None and row.status == "done", row
            assert row.rows_done == 3_000 and row.rows_total == 3_000
            background = [b for b in store.recent_batches("work_orders") if b["mode"] != "retry"]
            assert background[0]["partition_key"] == night.tags["dagster/partition"]
            # Orders read before their items reached the hub wait, and the sensors deliver
            # them once the items' sync succeeded: in the end the hub holds every order.
            world.wait_for(
                "every order at the hub", lambda: hub.store.count("work_orders") == 3_000
            )
    store.dispose()


def test_a_killed_cli_run_never_blocks_the_queue(tmp_path: Path, pg_url: str) -> None:
    """A run killed under `dagster job execute` stays STARTED for Dagster; the sensors fail it.

    With one run per entity in the queue, the next queued run of that entity
    would wait for ever behind it. The killed run's lease dies with its process,
    dead_runs_sensor abandons its batch and reports the run failed, and the
    queued run goes.
    """
    StateStore(pg_url).migrate()
    _hold_background_syncs(pg_url)
    spec = DatasetSpec(seed=16, work_orders=1_500, operations_per_order=0, bad_fraction=0)
    with (
        running_apismith(spec, token=APISMITH_TOKEN) as api,
        running_schedulehub(token=SCHEDULEHUB_TOKEN, faults="latency=1.0:100") as hub,
    ):
        env = {
            "APISMITH_URL": api.url,
            "SCHEDULEHUB_URL": hub.url,
            "APISMITH_TOKEN": APISMITH_TOKEN,
            "SCHEDULEHUB_TOKEN": SCHEDULEHUB_TOKEN,
            "DATABASE_URL": pg_url,
            "SENSOR_INTERVAL_SECONDS": "2",
            "DEFAULT_BATCH_SIZE": "25",
            "SYNC_WORKER_THREADS": "1",
        }
        with local_deployment(tmp_path, env) as world:
            world.launch("sync_items_job")
            assert world.finished_run("sync_items_job").status == dg.DagsterRunStatus.SUCCESS
            cli = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("dagster")),
                    "job",
                    "execute",
                    "-m",
                    "syncflow_dagster.definitions",
                    "-j",
                    "sync_work_orders_job",
                ],
                env=world.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

            def ingesting() -> bool:
                started = [
                    r
                    for r in world.runs("sync_work_orders_job")
                    if r.status == dg.DagsterRunStatus.STARTED
                ]
                return bool(started) and hub.store.count("work_orders") > 50

            try:
                world.wait_for("the CLI run ingesting", ingesting)
            finally:
                cli.kill()
                cli.wait()
            [killed] = world.runs("sync_work_orders_job")
            world.launch("sync_work_orders_job")  # queued behind the dead run's slot
            # Dagster has no way to tell the run died; the sensors do, from its lease.
            world.wait_for(
                "the dead run failed",
                lambda: (
                    world.instance.get_run_by_id(killed.run_id).status  # type: ignore[union-attr]
                    == dg.DagsterRunStatus.FAILURE
                ),
            )
            failures = world.instance.all_logs(
                killed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
            )
            assert any("no longer holds a live lease" in (e.message or "") for e in failures)
            rerun = world.finished_run("sync_work_orders_job", after=1)
            assert rerun.status == dg.DagsterRunStatus.SUCCESS, world.tail()
            assert hub.store.count("work_orders") == 1_500
            store = StateStore(pg_url)
            batches = sorted(store.recent_batches("work_orders"), key=lambda b: b["id"])
            assert batches[0]["status"] == "failed" and "lease" in batches[0]["error"]
            assert batches[-1]["status"] == "succeeded"
            store.dispose()
