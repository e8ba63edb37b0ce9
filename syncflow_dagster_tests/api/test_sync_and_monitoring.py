"""Sync and monitoring endpoints against a Dagster stand-in: run config, tags, joins, metrics."""

import json
from typing import Any

import polars as pl
from graphql import parse, validate
from prometheus_client.parser import text_string_to_metric_families

from syncflow_dagster.api import dagster as gateway
from syncflow_dagster.metrics import METRIC_NAMES
from syncflow_dagster_tests.api.conftest import Api


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_the_graphql_documents_are_valid_against_dagsters_schema() -> None:
    from dagster_graphql.schema import create_schema  # noqa: PLC0415 - heavy, only here

    schema = create_schema().graphql_schema
    documents = {
        name: value
        for name, value in vars(gateway).items()
        if isinstance(value, str) and value.lstrip().startswith(("query", "mutation"))
    }
    assert len(documents) == 8
    for name, document in documents.items():
        assert validate(schema, parse(document)) == [], name


def test_start_builds_run_config_and_tags(api: Api) -> None:
    answer = api.post(
        "/api/v1/sync/start",
        json={"entity": "work_orders", "mode": "full", "max_rows": 5000, "partition": "2026-11-26"},
    )
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert (body["job"], body["partition"], body["status"]) == (
        "sync_work_orders_job",
        "2026-11-26",
        "QUEUED",
    )
    job, run_config, tags = api.dagster.launched[-1]
    assert run_config == {"ops": {"fetch": {"config": {"mode": "full", "max_rows": 5000}}}}
    assert tags == {
        "dagster/partition": "2026-11-26",
        "syncflow/entity": "work_orders",
        "syncflow/trigger": "api",
        "syncflow/launched_by": "alice",
    }
    plain = api.post("/api/v1/sync/start", json={"entity": "items"}).json()
    assert api.dagster.launched[-1][1] == {}
    assert plain["partition"]  # the window under way
    everything = api.post("/api/v1/sync/start", json={"entity": "all", "mode": "incremental"})
    assert everything.status_code == 202
    job, run_config, _ = api.dagster.launched[-1]
    assert job == "sync_all_job"
    assert run_config["ops"]["items__fetch"] == {"config": {"mode": "incremental"}}
    assert api.post("/api/v1/sync/start", json={"entity": "nothing"}).status_code == 404
    bad = api.post("/api/v1/sync/start", json={"entity": "items", "partition": "1999-01-01"})
    assert bad.status_code == 422
    assert (
        api.post("/api/v1/sync/start", json={"entity": "items", "mode": "fast"}).status_code == 422
    )
    api.dagster.down = True
    down = api.post("/api/v1/sync/start", json={"entity": "items"})
    assert down.status_code == 502
    assert "cannot be reached" in down.json()["detail"]


def test_status_and_history_join_batches_with_dagster(api: Api) -> None:
    store = api.store
    api.dagster.add_run("run-a", "sync_items_job", "SUCCESS", {"syncflow/entity": "items"})
    batch = store.start_batch("items", "run-a", "incremental", partition_key="2026-11-26")
    store.finish_batch(batch, "succeeded", {"fetched": 7, "inserted": 7, "ingested": 7})
    status = api.get("/api/v1/sync/status/run-a").json()
    assert status["status"] == "SUCCESS"
    assert status["batches"][0]["metrics"]["inserted"] == 7
    by_entity = api.get("/api/v1/sync/status/items").json()
    assert by_entity["run_id"] == "run-a"
    history = api.get("/api/v1/sync/history", params={"entity": "items"}).json()
    assert [(i["id"], i["run_status"], i["status"]) for i in history["items"]] == [
        (batch, "SUCCESS", "succeeded")
    ]
    # A batch whose run Dagster does not know is still reported.
    orphan = store.start_batch("items", "run-gone", "full")
    assert api.get("/api/v1/sync/status/run-gone").json()["status"] == "UNKNOWN"
    page = api.get("/api/v1/sync/history", params={"limit": 1}).json()
    assert page["items"][0]["id"] == orphan and page["next_before_id"] == orphan
    assert api.get("/api/v1/sync/status/no-such-run").status_code == 404
    api.dagster.down = True
    degraded = api.get("/api/v1/sync/history").json()
    assert degraded["dagster_error"] and degraded["items"][0]["run_status"] is None


def test_stop_terminates_and_closes_the_batch_through_the_lifecycle(api: Api) -> None:
    store = api.store
    api.dagster.add_run("run-b", "sync_items_job", "STARTED", {"syncflow/entity": "items"})
    batch = store.start_batch("items", "run-b", "full")
    answer = api.post("/api/v1/sync/stop/run-b", params={"wait_seconds": 2})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["terminated"] == ["run-b"] and body["batches_closed"] == [batch]
    closed = store.get_batch(batch)
    assert (
        closed["status"] == "failed"
        and "stopped over the operations API by alice" in closed["error"]
    )
    assert api.post("/api/v1/sync/stop/run-b").status_code == 409  # already over
    assert api.post("/api/v1/sync/stop/items").status_code == 409  # nothing active
    # By entity: every queued or running run of it; a run still ending keeps its batch.
    api.dagster.finish_on_terminate = "CANCELING"
    api.dagster.add_run("run-c", "sync_items_job", "QUEUED", {"syncflow/entity": "items"})
    slow = store.start_batch("items", "run-c", "full")
    body = api.post("/api/v1/sync/stop/items", params={"wait_seconds": 0}).json()
    assert body["terminated"] == ["run-c"] and body["batches_closed"] == []
    assert "still ending" in body["detail"]
    assert store.get_batch(slow)["status"] == "running"


def test_retry_failed_launches_the_resolve_job(api: Api) -> None:
    answer = api.post(
        "/api/v1/sync/retry-failed", json={"entity": "items", "code": "invalid_record", "ids": [3]}
    )
    assert answer.status_code == 202, answer.text
    job, run_config, tags = api.dagster.launched[-1]
    assert job == "resolve_failed_records_job"
    config = run_config["ops"]["resolve_failed_records"]["config"]
    assert config == {
        "action": "retry",
        "ids": [3],
        "entity": "items",
        "code": "invalid_record",
        "reason": "retried over the operations API by alice",
    }
    assert tags["syncflow/entity"] == "items"
    assert api.post("/api/v1/sync/retry-failed", json={"reason": "x"}).status_code == 422


def _letters(api: Api, batch: int) -> None:
    frame = pl.DataFrame(
        {
            "stage": ["validate", "validate", "ingest"],
            "code": ["required", "required", "invalid_record"],
            "error_kind": ["permanent", "permanent", "transient"],
            "raw": [json.dumps({"ITEM_NO": f"I{i}"}) for i in range(3)],
        }
    )
    api.store.add_failed(batch, "items", frame)


def test_metrics_hold_the_batch_counters_and_gauges(api: Api) -> None:
    store = api.store
    first = store.start_batch("items", "r1", "full")
    store.finish_batch(first, "succeeded", {"fetched": 10, "inserted": 9, "dead_lettered": 3})
    second = store.start_batch("items", "r2", "incremental")
    store.finish_batch(second, "failed", {"fetched": 5}, error="boom", error_kind="transient")
    _letters(api, first)
    store.start_batch("work_orders", "r3", "full")  # running: not counted yet
    answer = api.get("/api/v1/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = _samples(answer.text)
    items = (("entity", "items"),)
    assert samples[("syncflow_batch_fetched_total", items)] == 15
    assert samples[("syncflow_batch_inserted_total", items)] == 9
    assert ("syncflow_batch_fetched_total", (("entity", "work_orders"),)) not in samples
    for name in METRIC_NAMES:
        assert ("syncflow_batch_" + name + "_total", items) in samples
    assert samples[("syncflow_batches_total", (("entity", "items"), ("status", "failed")))] == 1
    assert samples[("syncflow_run_duration_seconds_count", items)] == 2
    assert samples[("syncflow_run_duration_seconds_bucket", (*items, ("le", "+Inf")))] == 2
    letters = (("code", "required"), ("entity", "items"), ("kind", "permanent"))
    assert samples[("syncflow_dead_letters_open", letters)] == 2
    assert ("syncflow_last_successful_sync_timestamp_seconds", items) in samples
    assert samples[("syncflow_state_up", ())] == 1
    stats: dict[str, Any] = {e["entity"]: e for e in api.get("/api/v1/stats").json()["entities"]}
    assert stats["items"]["batches"] == {"succeeded": 1, "failed": 1}
    assert stats["items"]["open_dead_letters"] == 3
    assert stats["items"]["totals"]["fetched"] == 15
    assert stats["work_orders"]["batches"] == {"running": 1}


def test_failed_records_and_pending_children_lists(api: Api) -> None:
    batch = api.store.start_batch("items", "r1", "full")
    _letters(api, batch)
    page = api.get("/api/v1/failed-records", params={"code": "required", "limit": 1}).json()
    assert len(page["items"]) == 1 and page["next_after_id"] == page["items"][0]["id"]
    rest = api.get(
        "/api/v1/failed-records", params={"code": "required", "after_id": page["next_after_id"]}
    ).json()
    assert len(rest["items"]) == 1 and rest["next_after_id"] is None
    api.store.resolve_failed([page["items"][0]["id"]], "fixed in the ERP")
    one = api.get(f"/api/v1/failed-records/{page['items'][0]['id']}").json()
    assert one["status"] == "resolved" and one["actions"][0]["reason"] == "fixed in the ERP"
    assert len(api.get("/api/v1/failed-records", params={"since": "1h"}).json()["items"]) == 2
    assert api.get("/api/v1/failed-records", params={"since": "soon"}).status_code == 422
    assert api.get("/api/v1/failed-records", params={"kind": "odd"}).status_code == 422
    children = pl.DataFrame(
        {
            "bk_hash": ["a" * 32],
            "payload": [json.dumps({"x": 1})],
            "waiting_for": [json.dumps([{"entity": "items", "bk_hash": "b" * 32}])],
        }
    )
    api.store.add_pending("work_orders", batch, children)
    waiting = api.get("/api/v1/pending-children", params={"entity": "work_orders"}).json()
    assert [c["bk_hash"] for c in waiting["items"]] == ["a" * 32]
    assert api.get("/api/v1/pending-children", params={"status": "dropped"}).json()["items"] == []
    # Ids beyond what the database holds are refused, not an OverflowError (found by schemathesis).
    for path in ("/api/v1/failed-records", "/api/v1/pending-children"):
        for name in ("batch_id", "after_id"):
            too_big = api.get(path, params={name: 2**63})
            assert too_big.status_code == 422, (path, name, too_big.text)
        assert api.get(path, params={"batch_id": 2**63 - 1}).json()["items"] == []
