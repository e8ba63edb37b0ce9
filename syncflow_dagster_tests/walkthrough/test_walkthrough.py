"""A newcomer's first hour, as the README tells it, without a browser.

The steps (each what the README says to type or click):

1. ``make demo`` (``syncflow demo``): three rounds that reconcile, a quiet console
   (one line per entity run, then the tables), the world left in DATA_DIR.
2. ``make ui`` (``syncflow emulators --ui --ui-port PORT``): the emulators serving the
   demo's final ERP, the Dagster UI and daemon, the operations API.
3. The UI's partition page of every entity job counts the demo's runs (GraphQL, as the
   page asks).
4. ``syncflow emulators update/insert ...`` changes the ERP; a launchpad run
   (``launchPipelineExecution``, empty config) and a partition backfill
   (``launchPartitionBackfill``) carry the changes to the hub, which then holds exactly
   what the changed ERP says; the backfilled partition counts on the partition page.
5. ``syncflow emulators stop``: a run launched now fails within a minute, naming the URL.
6. Ctrl-C ends ``make ui`` without a traceback.
"""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from syncflow_dagster.config.loader import load_catalog
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.emulators.apismith import ErpDataset
from syncflow_dagster.paths import ENTITIES_DIR, PROJECT_DIR
from syncflow_dagster.settings import DEMO_APISMITH_TOKEN, DEMO_SCHEDULEHUB_TOKEN
from syncflow_dagster.testing.local_world import port_in_use
from syncflow_dagster.testing.reconcile import expected_records, reconcile
from syncflow_dagster_tests.walkthrough.sandbox import sandbox_env, syncflow

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:gql.*")]

ROWS = "150"
LOCATION = "syncflow_dagster.definitions"
REPO = {"repositoryName": "__repository__", "repositoryLocationName": LOCATION}
ENTITY_JOBS = [
    "sync_items_job",
    "sync_work_centers_job",
    "sync_work_orders_job",
    "sync_work_order_operations_job",
]
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
PARTITIONS = """
query ($name: String!) {
  partitionSetOrError(repositorySelector: {repositoryName: "__repository__",
                      repositoryLocationName: "syncflow_dagster.definitions"},
                      partitionSetName: $name) {
    ... on PartitionSet { partitionStatusesOrError {
      __typename ... on PartitionStatuses { results { partitionName runStatus } } } }
  }
}"""
LAUNCH = """
mutation ($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
BACKFILL = """
mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  }
}"""


@dataclass
class World:
    """The sandboxed local world and how to reach it."""

    env: dict[str, str]
    data: Path
    ui: str
    api: str
    process: subprocess.Popen[str]
    output: list[str]

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        answer = httpx.post(
            f"{self.ui}/graphql", json={"query": query, "variables": variables}, timeout=60
        )
        body = answer.json()
        assert "errors" not in body, body
        return dict(body["data"])

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.data / "dagster"))

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 240) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            assert self.process.poll() is None, f"make ui ended:\n{self.text()}"
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}\n{self.text()}\n{self.logs()}")

    def text(self) -> str:
        return "".join(self.output)

    def logs(self) -> str:
        tails = []
        for log in sorted((self.data / "logs").glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-15:]
            tails.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(tails)


def _reader(process: subprocess.Popen[str], sink: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        sink.append(line)


@pytest.fixture
def make_ui(tmp_path: Path) -> Iterator[Callable[[], World]]:
    """``make ui`` once the demo has run: started on demand, ended with Ctrl-C."""
    import threading  # noqa: PLC0415

    started: list[World] = []
    env = sandbox_env(tmp_path)

    def start() -> World:
        command = [
            str(Path(sys.executable).with_name("syncflow")),
            "emulators",
            "--ui",
            "--ui-port",
            env["UI_PORT"],
        ]
        process = subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        output: list[str] = []
        threading.Thread(target=_reader, args=(process, output), daemon=True).start()
        world = World(
            env,
            Path(env["DATA_DIR"]),
            f"http://127.0.0.1:{env['UI_PORT']}",
            f"http://127.0.0.1:{env['API_PORT']}",
            process,
            output,
        )
        started.append(world)
        world.wait_for("make ui to be ready", lambda: "Ctrl-C stops everything" in world.text())
        return world

    start.env = env  # type: ignore[attr-defined]
    yield start
    for world in started:
        if world.process.poll() is None:
            os.killpg(world.process.pid, signal.SIGKILL)
            world.process.wait(timeout=30)


def _statuses(world: World, job: str) -> dict[str, str | None]:
    data = world.graphql(PARTITIONS, name=f"{job}_partition_set")
    results = data["partitionSetOrError"]["partitionStatusesOrError"]["results"]
    return {r["partitionName"]: r["runStatus"] for r in results}


def _launch(world: World, job: str, tags: dict[str, str] | None = None) -> str:
    params = {
        "selector": {**REPO, "pipelineName": job},
        "mode": "default",
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
    }
    answer = world.graphql(LAUNCH, params=params)["launchPipelineExecution"]
    assert answer["__typename"] == "LaunchRunSuccess", answer
    return str(answer["run"]["runId"])


def _finished(world: World, run_id: str, timeout: float = 240) -> dg.DagsterRun:
    instance = world.instance()

    def done() -> dg.DagsterRun | None:
        run = instance.get_run_by_id(run_id)
        return run if run is not None and run.status in FINISHED else None

    try:
        return world.wait_for(f"run {run_id}", done, timeout)
    finally:
        instance.dispose()


def _quiet(world: World) -> None:
    """Wait until no run is queued or in progress (sensors may have launched some)."""
    instance = world.instance()
    busy = [
        dg.DagsterRunStatus.QUEUED,
        dg.DagsterRunStatus.NOT_STARTED,
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED,
    ]
    try:
        world.wait_for(
            "every run to finish",
            lambda: not instance.get_runs(filters=dg.RunsFilter(statuses=busy)),
        )
    finally:
        instance.dispose()


def _reconciled(world: World) -> None:
    """The hub holds exactly what the ERP, as saved after the last change, says."""
    erp = ErpDataset.load(world.data / "erp.zip")
    catalog = load_catalog(ENTITIES_DIR)
    with ScheduleHubClient(world.env["SCHEDULEHUB_URL"], DEMO_SCHEDULEHUB_TOKEN) as hub:
        schemas = hub.entities()
        required = {
            c.name: {n for n, f in schemas[c.target.entity].fields.items() if f.required}
            for c in catalog
        }
        check = reconcile(hub, catalog, expected_records(erp, catalog, "Europe/Berlin", required))
    assert check.ok, check.problems


def _metadata_as_dagster_renders_it(data: Path) -> None:
    """JSON as JSON, no null fields, batch labels that read naturally."""
    instance = dg.DagsterInstance.from_config(str(data / "dagster"))
    try:
        [run] = instance.get_runs(filters=dg.RunsFilter(job_name="sync_items_job"))
        events = instance.all_logs(run.run_id)
    finally:
        instance.dispose()
    [materialized] = [
        e for e in events if e.dagster_event and e.dagster_event.is_step_materialization
    ]
    materialization = materialized.dagster_event.step_materialization_data.materialization  # type: ignore[union-attr]
    assert materialization.description == "items, batch #1"
    assert isinstance(materialization.metadata["stage_seconds"], dg.JsonMetadataValue)
    outputs = [
        e for e in events if e.dagster_event and e.dagster_event.event_type_value == "STEP_OUTPUT"
    ]
    assert len(outputs) >= 9
    for event in outputs:
        metadata = event.dagster_event.event_specific_data.metadata  # type: ignore[union-attr]
        assert metadata, event.step_key
        for key, value in metadata.items():
            assert not isinstance(value, dg.NullMetadataValue), (event.step_key, key)
            assert getattr(value, "value", value) is not None, (event.step_key, key)
    assert isinstance(metadata["stage_seconds"], dg.JsonMetadataValue)  # track's output
    logged = [e.user_message for e in events]
    assert any(m.startswith("items, batch #1: fetched=") for m in logged), logged


def test_from_make_demo_to_a_run_in_the_ui_that_syncs_a_change(
    make_ui: Callable[[], World],
) -> None:
    env: dict[str, str] = make_ui.env  # type: ignore[attr-defined]
    began = time.monotonic()

    # 1. make demo
    demo = syncflow(env, "demo", "--rows", ROWS)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    out = demo.stdout
    assert out.count("reconciled: the hub holds exactly what the ERP says") == 3, out
    assert "DEBUG" not in out and "STEP_START" not in out and "alembic" not in demo.stderr
    progress = [line for line in out.splitlines() if re.search(r" run [0-9a-f]{8} ", line)]
    assert len(progress) == 6 and all("SUCCESS" in line for line in progress), progress
    assert "Next: make ui" in out
    data = Path(env["DATA_DIR"])
    for kept in ("erp.zip", "schedulehub.db", "syncflow.db", "dagster"):
        assert (data / kept).exists(), kept
    partition = re.search(r"partition (\d{4}-\d\d-\d\d)", out)
    assert partition is not None
    demo_partition = partition.group(1)
    demo_seconds = time.monotonic() - began
    _metadata_as_dagster_renders_it(data)

    # 2. make ui: the demo's world, served
    world = make_ui()
    text = world.text()
    for what in ("APISmith emulator", "ScheduleHub emulator", "Dagster UI", "operations API"):
        assert what in text, text
    erp = httpx.get(
        f"{env['APISMITH_URL']}/api/v1/entities/work_orders/count",
        headers={"Authorization": f"Bearer {DEMO_APISMITH_TOKEN}"},
    ).json()["count"]
    assert erp == ErpDataset.load(data / "erp.zip").ground_truth("work_orders").height
    token = (data / "api-token").read_text().strip()
    health = httpx.get(
        f"{world.api}/api/v1/sync/status", headers={"Authorization": f"Bearer {token}"}
    )
    assert health.status_code == 200, health.text

    # 3. the partition pages count the demo's runs
    for job in ENTITY_JOBS:
        assert _statuses(world, job).get(demo_partition) == "SUCCESS", job

    # 4. change the ERP; a launchpad run and a backfill carry it to the hub
    changed = syncflow(env, "emulators", "update", "items", "3", "--seed", "7")
    assert changed.returncode == 0 and changed.stdout.startswith("updated 3 items"), changed
    added = syncflow(env, "emulators", "insert", "work_orders", "2")
    assert added.returncode == 0 and added.stdout.startswith("inserted 2 work_orders"), added
    removed = syncflow(env, "emulators", "delete", "work_order_operations", "2")
    assert removed.returncode == 0, removed
    launchpad = _launch(world, "sync_items_job")
    assert _finished(world, launchpad).status == dg.DagsterRunStatus.SUCCESS, world.logs()
    backfill_day = (date.fromisoformat(demo_partition) - timedelta(days=1)).isoformat()
    assert _statuses(world, "sync_work_orders_job").get(backfill_day) is None
    launched = world.graphql(
        BACKFILL,
        params={
            "selector": {
                "partitionSetName": "sync_work_orders_job_partition_set",
                "repositorySelector": REPO,
            },
            "partitionNames": [backfill_day],
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    instance = world.instance()
    backfill_runs = world.wait_for(
        "the backfill's run",
        lambda: instance.get_runs(
            filters=dg.RunsFilter(tags={"dagster/backfill": launched["backfillId"]})
        ),
    )
    assert _finished(world, backfill_runs[0].run_id).status == dg.DagsterRunStatus.SUCCESS
    ops = _launch(world, "sync_work_order_operations_job")
    assert _finished(world, ops).status == dg.DagsterRunStatus.SUCCESS
    _quiet(world)
    _reconciled(world)
    assert _statuses(world, "sync_work_orders_job").get(backfill_day) == "SUCCESS"
    instance.dispose()

    # 5. the emulators stop: a run fails within a minute, naming the URL
    stopped = syncflow(env, "emulators", "stop")
    assert stopped.returncode == 0 and "APISmith emulator" in stopped.stdout, stopped
    world.wait_for("make ui to notice", lambda: "the rest stays up" in world.text(), 30)
    assert not port_in_use("127.0.0.1", int(env["APISMITH_URL"].rsplit(":", 1)[1]))
    launched_at = time.monotonic()
    failing = _launch(world, "sync_items_job")
    run = _finished(world, failing, timeout=120)
    took = time.monotonic() - launched_at
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert took < 60, took
    instance = world.instance()
    failures = [  # the step's error with its causes, as the run page shows it
        e.dagster_event.event_specific_data.error.to_string()  # type: ignore[union-attr]
        for e in instance.all_logs(failing, of_type=dg.DagsterEventType.STEP_FAILURE)
    ]
    logged = [e.user_message for e in instance.all_logs(failing)]
    warnings = [m for m in logged if "retrying in" in m]
    instance.dispose()
    assert failures and f"{env['APISMITH_URL']}/api/v1/entities" in failures[0], failures
    assert "CONNECT_GRACE_SECONDS" in failures[0]
    assert warnings and env["APISMITH_URL"] in warnings[0], warnings  # told while it waited
    # A transient failure: the daemon retries the run (and the retry fails the same way).
    instance = world.instance()
    retried = world.wait_for(
        "the daemon's retry of the failed run",
        lambda: instance.get_runs(filters=dg.RunsFilter(tags={"dagster/parent_run_id": failing})),
        timeout=90,
    )
    instance.dispose()
    assert retried[0].job_name == "sync_items_job"

    # 6. Ctrl-C
    os.killpg(world.process.pid, signal.SIGINT)
    assert world.process.wait(timeout=90) == 0
    time.sleep(0.5)
    assert "Traceback" not in world.text() and "KeyboardInterrupt" not in world.text()
    for port in (env["UI_PORT"], env["API_PORT"]):
        assert not port_in_use("127.0.0.1", int(port))
    print(f"walkthrough: demo {demo_seconds:.0f} s, all {time.monotonic() - began:.0f} s")
