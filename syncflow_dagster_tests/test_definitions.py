"""The code location loads: every job, its partitions and resources, with unique op names."""

import os
import subprocess
import sys
from collections import defaultdict
from datetime import time

import dagster as dg
import pytest

from syncflow_dagster.config.loader import load_catalog
from syncflow_dagster.definitions import defs as load_defs
from syncflow_dagster.orchestration.build import build_definitions
from syncflow_dagster.paths import PROJECT_DIR
from syncflow_dagster.settings import load_settings
from syncflow_dagster_tests.orchestration.conftest import STAGES

ENTITY_JOBS = {
    "sync_items_job",
    "sync_work_centers_job",
    "sync_work_orders_job",
    "sync_work_order_operations_job",
}
RETRY_JOBS = {name.replace("sync_", "retry_", 1) for name in ENTITY_JOBS}
BACKGROUND_JOBS = {name.replace("_job", "_background_job") for name in ENTITY_JOBS}
ALL_JOBS = {
    *ENTITY_JOBS,
    "sync_all_job",
    *RETRY_JOBS,
    *BACKGROUND_JOBS,
    "resolve_failed_records_job",
}
SENSORS = {
    "pending_children_sensor",
    "parent_synced_sensor",
    "failed_records_sensor",
    "dead_runs_sensor",
    "batch_on_run_failure_sensor",
    "background_sync_sensor",
}
RESOURCES = {"io_manager", "apismith", "schedulehub", "state", "entities"}


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    """SyncFlow's definitions from the default settings (nothing needs to be running)."""
    return build_definitions(load_settings())


def _jobs(defs: dg.Definitions) -> list[dg.JobDefinition]:
    return list(defs.get_repository_def().get_all_jobs())


def test_definitions_are_loadable(defs: dg.Definitions) -> None:
    dg.Definitions.validate_loadable(defs)


def test_the_entry_point_builds_the_same_jobs() -> None:
    loaded = load_defs()
    assert isinstance(loaded, dg.Definitions)
    assert {j.name for j in _jobs(loaded)} == ALL_JOBS


def test_every_job_is_present_and_named_job(defs: dg.Definitions) -> None:
    names = {job.name for job in _jobs(defs)}
    assert names == ALL_JOBS
    assert all(name.endswith("_job") for name in names)
    catalog = load_catalog(load_settings().entities_dir)
    assert {f"sync_{name}_job" for name in catalog.entities} == ENTITY_JOBS


def test_every_job_has_a_one_line_description(defs: dg.Definitions) -> None:
    for job in _jobs(defs):
        assert job.description, job.name
        assert job.description.strip()
        assert "\n" not in job.description.strip(), job.name


@pytest.mark.parametrize("name", sorted(ENTITY_JOBS))
def test_entity_jobs_are_the_nine_stage_chain(defs: dg.Definitions, name: str) -> None:
    job = defs.get_job_def(name)
    assert [node.name for node in job.graph.nodes_in_topological_order] == list(STAGES)
    assert job.tags["syncflow/entity"] == name.removeprefix("sync_").removesuffix("_job")
    # A run retried after a failure redoes every step (in-memory hand-over between ops).
    assert job.tags["dagster/retry_strategy"] == "ALL_STEPS"


def test_partitions_are_daily_windows_opening_at_the_nightly_hour(defs: dg.Definitions) -> None:
    settings = load_settings()
    assert settings.background_sync_window_start == time(19, 0)
    for job in _jobs(defs):
        if job.name not in {*ENTITY_JOBS, "sync_all_job", *BACKGROUND_JOBS}:
            assert job.partitions_def is None, job.name  # retries and resolutions: no night
            continue
        partitions = job.partitions_def
        assert isinstance(partitions, dg.DailyPartitionsDefinition), job.name
        assert partitions.timezone == settings.erp_timezone
        assert partitions.hour_offset == settings.background_sync_window_start.hour
        assert partitions.minute_offset == settings.background_sync_window_start.minute
        # Tonight's window has a key too: it can be launched while it is under way.
        assert partitions.end_offset == 1
        window = partitions.time_window_for_partition_key("2026-11-26")
        assert (window.start.hour, window.end.hour) == (19, 19)
        assert str(window.start.tzinfo) == settings.erp_timezone


def test_sensors_and_schedules_are_named_and_described_for_the_ui(defs: dg.Definitions) -> None:
    sensors = {sensor.name: sensor for sensor in defs.sensors or []}
    assert set(sensors) == SENSORS
    schedules = {schedule.name: schedule for schedule in defs.schedules or []}
    assert all(name.endswith("_schedule") for name in schedules)
    for definition in [*sensors.values(), *schedules.values()]:
        description = (definition.description or "").strip()
        assert description and "\n" not in description, definition.name


def test_resources_are_present(defs: dg.Definitions) -> None:
    assert set(defs.resources or {}) >= RESOURCES
    for job in _jobs(defs):
        assert set(job.resource_defs) >= RESOURCES, job.name


def test_secrets_come_from_the_environment(defs: dg.Definitions) -> None:
    resources = defs.resources or {}
    for name, var in (("apismith", "APISMITH_TOKEN"), ("schedulehub", "SCHEDULEHUB_TOKEN")):
        token = resources[name].token
        assert isinstance(token, dg.EnvVar)
        assert token.env_var_name == var


def test_op_names_are_unique_in_the_code_location(defs: dg.Definitions) -> None:
    by_name: dict[str, set[int]] = defaultdict(set)
    for job in _jobs(defs):
        for node_def in job.all_node_defs:
            by_name[node_def.name].add(id(node_def))
    assert {name: len(ids) for name, ids in by_name.items() if len(ids) > 1} == {}
    assert set(STAGES) | {"retry_pending"} <= set(by_name)


def test_dagster_cli_validates_the_code_location() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "definitions",
            "validate",
            "-m",
            "syncflow_dagster.definitions",
        ],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
