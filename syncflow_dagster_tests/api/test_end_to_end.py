"""The operations API against a real ``dagster dev`` (webserver + daemon) and both emulators.

A sync started over the API is a run in Dagster's run list, tagged with who
launched it, goes through the queue and the daemon, and ends SUCCESS; its
status joins the batch; ``/api/v1/metrics`` counts the batch, and the HTTP
retry a run worker made (APISmith answered 503 once) reaches the API through
the shared Prometheus directory and Dagster's event log holds the retry's
WARNING. A long run (the hub slowed by latency faults) is stopped over the
API: Dagster cancels it, its batch is closed, the entity's lease is free.
Health sees every dependency up; an entity change reloads the code location;
SyncFlow's schedules and sensors are switched on and off through GraphQL.
"""

import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from syncflow_dagster.api.app import create_app
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.emulators.common.serving import serve_in_thread
from syncflow_dagster.paths import ENTITIES_DIR
from syncflow_dagster.testing.apismith import running_apismith
from syncflow_dagster.testing.dagster_dev import DevDeployment, dagster_dev
from syncflow_dagster.testing.schedulehub import running_schedulehub
from syncflow_dagster_tests.api.conftest import OPERATOR_TOKEN, READ_TOKEN, api_settings

APISMITH_TOKEN = "apismith-api-e2e-token"
HUB_TOKEN = "schedulehub-api-e2e-token"
AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:gql.*")]


def _metrics(api: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{api}/api/v1/metrics", headers=READ, timeout=30).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _status(api: str, run_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{api}/api/v1/sync/status/{run_id}", headers=READ, timeout=30)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _finished(api: str, run_id: str, world: DevDeployment) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        status = _status(api, run_id)
        return status if status["status"] in ("SUCCESS", "FAILURE", "CANCELED") else None

    return world.wait_for(f"run {run_id} to finish", done, timeout=240)  # type: ignore[return-value]


def test_syncs_started_watched_and_stopped_over_the_api(tmp_path: Path, pg_url: str) -> None:
    StateStore(pg_url).migrate()
    spec = DatasetSpec(seed=21, work_orders=150, operations_per_order=0, bad_fraction=0)
    slow_orders = "latency=1:500,only=/api/v1/ingest/work_orders"
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    shutil.copytree(ENTITIES_DIR, tmp_path / "entities")  # the API's and Dagster's
    with (
        running_apismith(spec, token=APISMITH_TOKEN, faults="at=2:503") as erp,
        running_schedulehub(token=HUB_TOKEN, faults=slow_orders) as hub,
    ):
        env = {
            "APISMITH_URL": erp.url,
            "APISMITH_TOKEN": APISMITH_TOKEN,
            "SCHEDULEHUB_URL": hub.url,
            "SCHEDULEHUB_TOKEN": HUB_TOKEN,
            "DATABASE_URL": pg_url,
            "DEFAULT_BATCH_SIZE": "5",
            "SYNC_WORKER_THREADS": "1",
            "RETRY_DELAY_SECONDS": "0.2",
            "MAX_RETRY_DELAY_SECONDS": "1",
            "BACKGROUND_SYNC_ENABLED": "false",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "ENTITIES_DIR": str(tmp_path / "entities"),
        }
        with dagster_dev(tmp_path, env) as world:
            settings = api_settings(
                tmp_path,
                database_url=pg_url,
                apismith_url=erp.url,
                apismith_token=APISMITH_TOKEN,
                schedulehub_url=hub.url,
                schedulehub_token=HUB_TOKEN,
                dagster_webserver_url=world.url,
                prometheus_multiproc_dir=metrics_dir,
                health_timeout_seconds=10,
            )
            with serve_in_thread(create_app(settings)) as api:
                _sync_to_success(api, world, spec)
                _stop_a_long_run(api, world)
                _health_and_reload(api, world)
                _switch_schedules_and_sensors(api)


def _sync_to_success(api: str, world: DevDeployment, spec: DatasetSpec) -> None:
    started = httpx.post(
        f"{api}/api/v1/sync/start", headers=AUTH, json={"entity": "items"}, timeout=60
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    done = _finished(api, run_id, world)
    assert done["status"] == "SUCCESS", world.tail()
    [batch] = done["batches"]
    assert batch["status"] == "succeeded"
    assert batch["metrics"]["inserted"] == spec.n_items
    assert (done["launched_by"], done["trigger"], done["job"]) == ("alice", "api", "sync_items_job")
    # The run is in Dagster's run list, through the queue, with its tags.
    run = world.instance.get_run_by_id(run_id)
    assert run is not None and run.job_name == "sync_items_job"
    assert run.tags["syncflow/launched_by"] == "alice"
    assert run.tags["syncflow/entity"] == "items"
    assert run.tags["dagster/partition"] == done["partition"]
    listed = httpx.get(f"{api}/api/v1/sync/history", headers=READ, params={"entity": "items"})
    assert listed.json()["items"][0]["run_status"] == "SUCCESS"
    # The retry the run worker made: logged into the run's event log, counted for Prometheus.
    logs = [e.user_message for e in world.instance.all_logs(run_id)]
    retries = [m for m in logs if "retrying in" in m]
    assert retries and f"{_erp_url(world)}" in retries[0], logs[-20:]
    assert APISMITH_TOKEN not in " ".join(logs)
    samples = _metrics(api)
    items = (("entity", "items"),)
    assert samples[("syncflow_batch_inserted_total", items)] == spec.n_items
    assert samples[("syncflow_batch_fetched_total", items)] == spec.n_items
    assert samples[("syncflow_batches_total", (*items, ("status", "succeeded")))] == 1
    assert samples[("syncflow_http_retries_total", (("upstream", "apismith"),))] >= 1


def _erp_url(world: DevDeployment) -> str:
    return world.env["APISMITH_URL"]


def _stop_a_long_run(api: str, world: DevDeployment) -> None:
    started = httpx.post(
        f"{api}/api/v1/sync/start", headers=AUTH, json={"entity": "work_orders"}, timeout=60
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]

    def sending() -> dict[str, Any] | None:
        status = _status(api, run_id)
        running = [b for b in status["batches"] if b["status"] == "running"]
        return status if status["status"] == "STARTED" and running else None

    status = world.wait_for("the work orders run to be under way", sending, timeout=180)
    assert isinstance(status, dict)
    batch_id = status["batches"][0]["id"]
    time.sleep(1)
    stopped = httpx.post(
        f"{api}/api/v1/sync/stop/{run_id}",
        headers=AUTH,
        params={"wait_seconds": 90},
        timeout=120,
    )
    assert stopped.status_code == 200, stopped.text
    body = stopped.json()
    assert body["terminated"] == [run_id]
    assert body["runs"][0]["status"] == "CANCELED", (body, world.tail())
    [batch] = body["runs"][0]["batches"]
    assert batch["id"] == batch_id and batch["status"] == "failed"
    store = StateStore(world.env["DATABASE_URL"])
    try:
        assert store.get_lease("work_orders") is None
        assert store.running_batches("work_orders") == []
    finally:
        store.dispose()
    again = httpx.post(f"{api}/api/v1/sync/stop/{run_id}", headers=AUTH, timeout=60)
    assert again.status_code == 409


def _health_and_reload(api: str, world: DevDeployment) -> None:
    def healthy() -> dict[str, Any] | None:
        answer = httpx.get(f"{api}/api/v1/health", timeout=60)
        body = answer.json()
        return body if answer.status_code == 200 else None

    body = world.wait_for("every dependency up", healthy, timeout=120)
    assert isinstance(body, dict)
    assert set(body["checks"]) == {
        "state_db",
        "apismith",
        "schedulehub",
        "dagster_webserver",
        "dagster_daemon",
    }
    items = httpx.get(f"{api}/api/v1/entities/items", headers=READ).json()
    assert items["state"]["records"] > 0
    changed = httpx.put(
        f"{api}/api/v1/entities/items",
        headers={**AUTH, "Content-Type": "application/yaml"},
        content=items["yaml"],
        timeout=120,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["code_location"]["reloaded"] is True, changed.text


def _switch_schedules_and_sensors(api: str) -> None:
    status = httpx.get(f"{api}/api/v1/schedules/status", headers=READ, timeout=60).json()
    assert status["dagster_error"] is None
    kinds = {i["name"]: (i["kind"], i["status"]) for i in status["instigators"]}
    assert kinds["dead_runs_sensor"] == ("sensor", "STOPPED")  # BACKGROUND_SYNC_ENABLED=false
    assert kinds["sync_items_schedule"] == ("schedule", "STOPPED")
    names = ["dead_runs_sensor", "sync_items_schedule"]
    started = httpx.post(
        f"{api}/api/v1/schedules/start", headers=AUTH, json={"names": names}, timeout=60
    )
    assert started.status_code == 200, started.text
    assert sorted(started.json()["switched"]) == names
    running = {i["name"] for i in started.json()["instigators"] if i["status"] == "RUNNING"}
    assert running == set(names)
    stopped = httpx.post(f"{api}/api/v1/schedules/stop", headers=AUTH, timeout=60).json()
    assert sorted(stopped["switched"]) == names
    assert {i["status"] for i in stopped["instigators"]} == {"STOPPED"}
