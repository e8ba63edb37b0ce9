"""The shipped Dagster instance files: the local default and the PostgreSQL variant."""

import shutil
from pathlib import Path

import dagster as dg
import pytest

from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.orchestration.build import build_definitions
from syncflow_dagster.paths import PROJECT_DIR
from syncflow_dagster.settings import load_settings
from syncflow_dagster.testing.apismith import running_apismith
from syncflow_dagster.testing.postgres import PostgresCluster
from syncflow_dagster.testing.schedulehub import running_schedulehub


def _instance(tmp_path: Path, name: str) -> dg.DagsterInstance:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_DIR / name, home / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(home))


def test_local_instance_queues_runs_one_per_entity(tmp_path: Path) -> None:
    instance = _instance(tmp_path, "dagster.yaml")
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert {
        "key": "syncflow/entity",
        "value": {"applyLimitPerUniqueValue": True},
        "limit": 1,
    } in limits
    assert instance.run_monitoring_enabled


def test_a_sync_job_runs_on_an_instance_stored_in_postgresql(
    tmp_path: Path, pg_cluster: PostgresCluster, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dagster_db = "dagster_storage"
    pg_cluster.create_database(dagster_db)
    for name, value in {
        "DAGSTER_PG_HOST": pg_cluster.host,
        "DAGSTER_PG_PORT": str(pg_cluster.port),
        "DAGSTER_PG_DB": dagster_db,
        "DAGSTER_PG_USER": pg_cluster.user,
        "DAGSTER_PG_PASSWORD": "ignored-by-trust-auth",
        "APISMITH_TOKEN": "api-token",
        "SCHEDULEHUB_TOKEN": "hub-token",
    }.items():
        monkeypatch.setenv(name, value)
    StateStore(pg_url).migrate()
    with (
        running_apismith(DatasetSpec(seed=3, work_orders=100), token="api-token") as api,
        running_schedulehub(token="hub-token") as hub,
        _instance(tmp_path, "dagster.postgres.yaml") as instance,
    ):
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        settings = load_settings(apismith_url=api.url, schedulehub_url=hub.url, database_url=pg_url)
        job = build_definitions(settings).get_job_def("sync_work_centers_job")
        result = job.execute_in_process(instance=instance, partition_key="2026-11-25")
        assert result.success
        stored = instance.get_run_by_id(result.run_id)
        assert stored is not None and stored.status == dg.DagsterRunStatus.SUCCESS
        assert stored.tags["syncflow/entity"] == "work_centers"
        events = instance.fetch_materializations(
            dg.AssetKey(["schedulehub", "work_centers"]), limit=5
        )
        assert len(events.records) == 1
        assert hub.store.count("work_centers") == api.dataset.ground_truth("work_centers").height
