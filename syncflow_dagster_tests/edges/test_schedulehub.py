from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syncflow_dagster.edges.http import ApiError, AuthError, NotFoundError
from syncflow_dagster.edges.retry import (
    RetriesExhaustedError,
    RetryAfterTooLongError,
    RetryPolicy,
)
from syncflow_dagster.edges.schedulehub import BatchOutcome, ScheduleHubClient
from syncflow_dagster.emulators.common.serving import serve_in_thread
from syncflow_dagster.testing.schedulehub import running_schedulehub

ITEM = {
    "item_no": "ITM-1",
    "description": None,
    "item_type": "MAKE",
    "uom": "EA",
    "standard_cost": 1.5,
    "lead_time_days": 3,
    "is_active": True,
    "created_on": "2026-01-02",
    "last_updated_at": "2026-01-02T03:04:05Z",
}


def _item(i: int, **data: object) -> dict[str, object]:
    return {
        "external_id": f"{i:032x}",
        "op": "upsert",
        "data": {**ITEM, "item_no": f"ITM-{i}", **data},
        "data_hash": f"{i:064x}",
        "parents": [],
    }


def _body(records: list[dict[str, object]], batch_id: str = "b") -> tuple[bytes, int]:
    return orjson.dumps({"batch_id": batch_id, "records": records}), len(records)


def _fast(sleeps: list[float] | None = None, retries: int = 6) -> RetryPolicy:
    record = sleeps if sleeps is not None else []
    return RetryPolicy(max_retries=retries, base_delay=0.001, max_delay=5, sleep=record.append)


def test_entities_describe_fields_and_parents() -> None:
    with running_schedulehub() as hub, ScheduleHubClient(hub.url, hub.token) as client:
        entities = client.entities()
    assert entities["work_orders"].parents == ("items",)
    assert entities["items"].fields["item_no"].required
    assert entities["items"].fields["standard_cost"].type == "number"


def test_concurrent_batches_report_every_outcome_and_counts() -> None:
    records = [_item(i) for i in range(2500)]
    bodies = [_body(records[i : i + 1000], f"b{i}") for i in range(0, 2500, 1000)]
    outcomes: list[BatchOutcome] = []
    with running_schedulehub() as hub, ScheduleHubClient(hub.url, hub.token, workers=3) as client:
        client.ingest_many("items", len(bodies), lambda i: bodies[i], outcomes.append)
        assert hub.store.count("items") == 2500
        again: list[BatchOutcome] = []
        client.ingest_many("items", len(bodies), lambda i: bodies[i], again.append)
    assert sorted(o.index for o in outcomes) == [0, 1, 2]
    assert sum(o.statuses["created"] for o in outcomes) == 2500
    assert sum(o.statuses["unchanged"] for o in again) == 2500  # idempotent resend


def test_rejections_are_reported_with_position_code_and_detail() -> None:
    bad = _item(2, uom=None)
    orphan = {
        "external_id": "e" * 32,
        "op": "upsert",
        "data_hash": "f" * 64,
        "data": {
            "order_no": "WO-1",
            "item_no": "ITM-X",
            "quantity": 1.0,
            "status": "PLANNED",
        },
        "parents": [{"entity": "items", "external_id": "d" * 32}],
    }
    with running_schedulehub() as hub, ScheduleHubClient(hub.url, hub.token) as client:
        outcome = client.ingest_body("items", *_body([_item(1), bad]))
        orphaned = client.ingest_body("work_orders", *_body([orphan]))
    assert outcome.statuses == {"created": 1, "rejected": 1}
    [rejection] = outcome.rejections
    assert (rejection.position, rejection.external_id, rejection.code) == (
        1,
        bad["external_id"],
        "invalid_record",
    )
    assert "uom" in rejection.detail
    assert orphaned.rejections[0].code == "missing_parent"


@pytest.mark.parametrize("fault", ["429", "503", "drop", "lost"])
def test_transient_failures_are_resent_and_nothing_is_applied_twice(fault: str) -> None:
    sleeps: list[float] = []
    with (
        running_schedulehub(faults=f"at=1:{fault};2:{fault},retry_after=2") as hub,
        ScheduleHubClient(hub.url, hub.token, retry=_fast(sleeps)) as client,
    ):
        outcome = client.ingest_body("items", *_body([_item(i) for i in range(10)]))
        assert hub.store.count("items") == 10
    assert outcome.attempts == 3 and len(sleeps) == 2
    if fault == "429":
        assert min(sleeps) >= 2  # Retry-After honoured
    # A batch applied but answered with no (complete) answer comes back 'unchanged' on resend.
    expected = "unchanged" if fault in ("drop", "lost") else "created"
    assert outcome.statuses == {expected: 10}


def test_retries_are_bounded() -> None:
    with (
        running_schedulehub(faults="503=1") as hub,
        ScheduleHubClient(hub.url, hub.token, retry=_fast(retries=2)) as client,
        pytest.raises(RetriesExhaustedError, match=r"after 2 retries"),
    ):
        client.ingest_body("items", *_body([_item(1)]))


def test_permanent_failures_stop_at_once_with_a_hint() -> None:
    with running_schedulehub(token="good") as hub:
        with (
            ScheduleHubClient(hub.url, "bad", retry=_fast()) as client,
            pytest.raises(AuthError, match="SCHEDULEHUB_TOKEN") as err,
        ):
            client.entities()
        assert "bad" not in str(err.value).replace("bearer", "")
        with ScheduleHubClient(hub.url, hub.token, retry=_fast()) as client:
            with pytest.raises(NotFoundError):
                client.ingest_body("no_such_entity", *_body([_item(1)]))
            with pytest.raises(ApiError, match="422"):
                client.ingest_body("items", b'{"records": "no"}', 1)
            with pytest.raises(ValueError, match="at most 1000"):
                client.ingest_body("items", *_body([_item(i) for i in range(1001)]))
            outcomes: list[BatchOutcome] = []
            with pytest.raises(NotFoundError):
                client.ingest_many("nope", 3, lambda i: _body([_item(i)]), outcomes.append)


def test_records_are_read_back_page_by_page() -> None:
    with running_schedulehub() as hub, ScheduleHubClient(hub.url, hub.token) as client:
        client.ingest_body("items", *_body([_item(i) for i in range(25)]))
        records = list(client.records("items", page_size=10))
    assert len(records) == 25 and len({r["external_id"] for r in records}) == 25
    assert records[0]["data"]["uom"] == "EA"


@contextmanager
def _scripted(*answers: Response) -> Iterator[str]:
    """A server answering every request with the next of ``answers`` (the last one repeats)."""
    queue = list(answers)

    async def answer(request: Request) -> Response:
        await request.body()
        return queue.pop(0) if len(queue) > 1 else queue[0]

    app = Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "POST"])])
    with serve_in_thread(app) as url:
        yield url


def test_a_408_is_retried() -> None:
    sleeps: list[float] = []
    ok = Response(orjson.dumps({"entities": []}), media_type="application/json")
    timeout = Response(b"", status_code=408)
    with _scripted(timeout, ok) as url, ScheduleHubClient(url, "t", retry=_fast(sleeps)) as client:
        assert client.entities() == {}
    assert len(sleeps) == 1


def test_a_retry_after_beyond_the_budget_gives_up_at_once() -> None:
    sleeps: list[float] = []
    with (
        running_schedulehub(faults="at=1:429,retry_after=7200") as hub,
        ScheduleHubClient(hub.url, hub.token, retry=_fast(sleeps)) as client,
        pytest.raises(RetryAfterTooLongError) as err,
    ):
        client.ingest_body("items", *_body([_item(1)]))
    assert sleeps == []
    message = str(err.value)
    assert "ScheduleHub asked to retry after 7200 s (Retry-After)" in message
    assert "on POST /api/v1/ingest/items" in message and "MAX_RETRY_DELAY_SECONDS" in message


@pytest.mark.parametrize("call", ["entities", "ingest", "records"])
def test_an_html_answer_is_an_api_error_naming_what_was_asked(call: str) -> None:
    page = Response(b"<!DOCTYPE html><html><body>Sign in</body></html>", media_type="text/html")
    with (
        _scripted(page) as url,
        ScheduleHubClient(url, "t", retry=_fast()) as client,
        pytest.raises(ApiError) as err,
    ):
        if call == "entities":
            client.entities()
        elif call == "ingest":
            client.ingest_body("items", *_body([_item(1), _item(2)]))
        else:
            list(client.records("items"))
    message = str(err.value)
    assert message.startswith("ScheduleHub ")
    assert "expected a JSON body but got text/html" in message
    assert "'<!DOCTYPE html><html><body>Sign in" in message and "SCHEDULEHUB_URL" in message


def test_json_of_another_shape_is_an_api_error() -> None:
    other = Response(orjson.dumps({"hello": "world"}), media_type="application/json")
    with _scripted(other) as url, ScheduleHubClient(url, "t", retry=_fast()) as client:
        with pytest.raises(ApiError, match="does not follow the ScheduleHub contract"):
            client.entities()
        with pytest.raises(ApiError, match=r"ingest into 'items'.*does not follow"):
            client.ingest_body("items", *_body([_item(1)]))
