"""resolve_failed_records_job: retry, resolve or discard dead letters from Dagster."""

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.orchestration.build import build_resources
from syncflow_dagster.orchestration.resolve import JOB_NAME, resolve_failed_records_job
from syncflow_dagster.settings import load_settings
from syncflow_dagster.testing.schedulehub import running_schedulehub
from syncflow_dagster_tests.orchestration.conftest import (
    SCHEDULEHUB_TOKEN,
    MakeHarness,
    SyncHarness,
    edited_entities,
)
from syncflow_dagster_tests.pipeline.test_redo import no_phantoms

SPEC = DatasetSpec(seed=4, work_orders=40, bad_fraction=0)


def run(h: SyncHarness, raise_on_error: bool = True, **config: Any) -> dg.ExecuteInProcessResult:
    """Execute the job as the lead's Definitions will hold it, over the harness's settings."""
    defs = dg.Definitions(jobs=[resolve_failed_records_job], resources=build_resources(h.settings))
    h.monkeypatch.setenv("DATABASE_URL", h.database_url)
    return defs.get_job_def(JOB_NAME).execute_in_process(
        run_config={"ops": {"resolve_failed_records": {"config": config}}},
        instance=h.instance,
        raise_on_error=raise_on_error,
    )


def history(h: SyncHarness, letter_id: int) -> list[tuple[str, str]]:
    row = h.store.get_failed(letter_id)
    assert row is not None
    return [(a["action"], a["reason"]) for a in json.loads(row["actions"] or "[]")]


@pytest.fixture
def h(make_harness: MakeHarness, tmp_path: Path) -> SyncHarness:
    """Items synced under a rule that wrongly refuses PHANTOM items: two dead letters."""
    harness = make_harness(SPEC)
    strict = harness.reconfigured(edited_entities(tmp_path, "items", no_phantoms))
    assert strict.run_entity("items").success
    assert harness.store.count_failed("items") == 2
    return harness


def test_the_job_reads_well_and_refuses_to_act_on_everything(h: SyncHarness) -> None:
    job = resolve_failed_records_job
    assert job.description and "\n" not in job.description
    assert [n.name for n in job.graph.nodes] == ["resolve_failed_records"]
    result = run(h, raise_on_error=False, action="discard", reason="clean up")
    assert not result.success
    failure = result.failure_data_for_node("resolve_failed_records")
    assert failure is not None and "refusing to act on every dead letter" in str(failure.error)
    assert h.store.count_failed("items") == 2


def test_retry_by_filter_delivers_the_letters_once_the_rule_is_fixed(h: SyncHarness) -> None:
    ids = h.store.list_failed("items")["id"].to_list()
    result = run(h, action="retry", entity="items", stage="validate", reason="PHANTOM is valid")
    assert result.success
    [batch] = h.batches_of_run(result.run_id)
    assert (batch["entity"], batch["mode"], batch["status"]) == ("items", "retry", "succeeded")
    assert (batch["fetched"], batch["inserted"]) == (2, 2)
    for letter_id in ids:
        row = h.store.get_failed(letter_id)
        assert row is not None and row["status"] == "resolved"
        assert history(h, letter_id) == [
            ("retry", "PHANTOM is valid"),
            ("retried", f"retried: delivered in batch {batch['id']}"),
        ]
    assert h.reconcile(["items"]).ok
    [output] = [e for e in result.all_node_events if e.is_successful_output]
    assert output.step_output_data is not None
    metadata = output.step_output_data.metadata
    assert (metadata["action"].value, metadata["letters_delivered"].value) == ("retry", 2)


def test_resolve_by_ids_and_discard_by_filter_record_the_reason(h: SyncHarness) -> None:
    first, second = h.store.list_failed("items")["id"].to_list()
    assert run(h, action="resolve", ids=[first], reason="fixed in the ERP").success
    assert run(h, action="discard", code=h.store.get_failed(second)["code"]).success  # type: ignore[index]
    one, two = h.store.get_failed(first), h.store.get_failed(second)
    assert one is not None and two is not None
    assert (one["status"], one["resolution"]) == ("resolved", "fixed in the ERP")
    assert two["status"] == "discarded"
    [(action, reason)] = history(h, second)
    assert action == "discard" and reason.startswith(f"{JOB_NAME} run ")
    # Named again, a closed letter stays as it was.
    assert run(h, action="discard", ids=[first], reason="again").success
    assert h.store.get_failed(first)["status"] == "resolved"  # type: ignore[index]


def test_a_retry_while_the_hub_is_down_fails_the_run_and_reschedules_the_letters(
    make_harness: MakeHarness, tmp_path: Path
) -> None:
    with running_schedulehub(token=SCHEDULEHUB_TOKEN, faults="503=1") as down:
        harness = make_harness(SPEC)
        strict = harness.reconfigured(edited_entities(tmp_path, "items", no_phantoms))
        assert strict.run_entity("items").success
        ids = harness.store.list_failed("items")["id"].to_list()
        settings = load_settings(**{**harness.settings.model_dump(), "schedulehub_url": down.url})
        broken = replace(harness, settings=settings)
        result = run(broken, raise_on_error=False, action="retry", ids=ids)
    assert not result.success
    for letter_id in ids:
        row = harness.store.get_failed(letter_id)
        assert row is not None
        assert (row["status"], row["attempts"]) == ("open", 1)
        assert [a for a, _ in history(harness, letter_id)] == ["retry", "retry_failed"]
