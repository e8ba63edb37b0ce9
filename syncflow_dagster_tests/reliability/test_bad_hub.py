"""Reliability corpus: the hub and the ERP answering in ways a sync cannot use.

Each case makes a server answer badly — the emulators with their fault
injection where they can produce the case, a tiny scripted server on loopback
where they cannot (HTML pages, 408, 500, JSON of another shape) — and expects
the client to raise one of SyncFlow's own errors naming the service, what was
asked and what to fix: never a bare ``JSONDecodeError`` or polars error, never
a retry earlier than the server asked, never silence.
"""

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syncflow_dagster.edges.apismith import ApiSmithClient
from syncflow_dagster.edges.retry import RetryPolicy
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.emulators.common.serving import free_port, serve_in_thread
from syncflow_dagster.errors import SyncFlowError, error_kind
from syncflow_dagster.testing.apismith import running_apismith
from syncflow_dagster.testing.schedulehub import running_schedulehub

HTML = ("text/html; charset=utf-8", b"<!DOCTYPE html>\n<html><body><h1>Sign in</h1></body></html>")
PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Case:
    """One bad answer and the error it must give.

    ``input``: ``service`` (``schedulehub`` / ``apismith``), ``call`` (what the
    client is asked), ``server`` (``emulator`` with ``faults`` / ``token``,
    ``scripted`` with ``answers`` — (status, content type, body, headers), the
    last one repeating — or ``nobody``), ``error`` (the error class expected)
    and ``kind`` (its error kind).
    """

    name: str
    input: dict[str, Any] = field(hash=False)
    outcome_kind: str
    expected: str


def _case(name: str, expected: str, **input_: Any) -> Case:
    return Case(name, input_, "clear_error", expected)


def _answer(
    status: int, content_type: str, body: bytes, **headers: str
) -> tuple[int, str, bytes, dict[str, str]]:
    return status, content_type, body, {k.replace("_", "-"): v for k, v in headers.items()}


def _json(status: int, doc: object, **headers: str) -> tuple[int, str, bytes, dict[str, str]]:
    return _answer(status, "application/json", orjson.dumps(doc), **headers)


def _html(status: int = 200) -> tuple[int, str, bytes, dict[str, str]]:
    return _answer(status, *HTML)


CASES: list[Case] = [
    # A 200 whose body is not JSON (a proxy's or a login page).
    _case(
        "hub_entity_list_is_html",
        "ScheduleHub entity list (GET /api/v1/entities): expected a JSON body but got text/html; "
        "charset=utf-8 (HTTP 200",
        service="schedulehub",
        call="entities",
        server="scripted",
        answers=[_html()],
        error="ApiError",
        kind="permanent",
    ),
    _case(
        "hub_ingest_answer_is_html",
        "ScheduleHub ingest into 'items' (POST /api/v1/ingest/items): expected a JSON body but "
        "got text/html",
        service="schedulehub",
        call="ingest",
        server="scripted",
        answers=[_html()],
        error="ApiError",
        kind="permanent",
    ),
    _case(
        "hub_records_are_html",
        "starting '<!DOCTYPE html> <html><body><h1>Sign in</h1></body></html>'",
        service="schedulehub",
        call="records",
        server="scripted",
        answers=[_html()],
        error="ApiError",
        kind="permanent",
    ),
    _case(
        "hub_answer_is_empty",
        "ScheduleHub entity list (GET /api/v1/entities): expected a JSON body but got "
        "application/json (HTTP 200, empty body",
        service="schedulehub",
        call="entities",
        server="scripted",
        answers=[_answer(200, "application/json", b"")],
        error="ApiError",
        kind="permanent",
    ),
    _case(
        "erp_entity_list_is_html",
        "APISmith entity list (GET /api/v1/entities): expected a JSON body but got text/html",
        service="apismith",
        call="entities",
        server="scripted",
        answers=[_html()],
        error="ApiError",
        kind="permanent",
    ),
    _case(
        "erp_count_is_html",
        "APISmith count of 'items' (GET /api/v1/entities/items/count): expected a JSON body",
        service="apismith",
        call="count",
        server="scripted",
        answers=[_html()],
        error="ApiError",
        kind="permanent",
    ),
    _case(
        "erp_keys_are_html",
        "APISmith keys of 'items' (GET /api/v1/entities/items/keys): expected a JSON body but "
        "got text/html",
        service="apismith",
        call="keys",
        server="scripted",
        answers=[_html()],
        error="ApiError",
        kind="permanent",
    ),
    # JSON, but not the contract's.
    _case(
        "hub_entity_list_of_another_shape",
        "ScheduleHub entity list (GET /api/v1/entities): the JSON answer does not follow the "
        "ScheduleHub contract",
        service="schedulehub",
        call="entities",
        server="scripted",
        answers=[_json(200, {"status": "ok"})],
        error="ApiError",
        kind="permanent",
    ),
    _case(
        "hub_ingest_answers_too_few_results",
        "ScheduleHub ingest into 'items': 1 results for 2 records",
        service="schedulehub",
        call="ingest",
        server="scripted",
        answers=[_json(200, {"batch_id": "b", "results": [{"status": "created"}]})],
        error="ApiError",
        kind="permanent",
    ),
    # 408 is transient (the contract: 4xx other than 408/429 are permanent).
    _case(
        "hub_answers_408_every_time",
        "/api/v1/ingest/items): gave up after 2 retries; last failure: ScheduleHub "
        "ingest into 'items': HTTP 408",
        service="schedulehub",
        call="ingest",
        server="scripted",
        answers=[_answer(408, PROBLEM, b'{"title": "Request Timeout"}')],
        error="RetriesExhaustedError",
        kind="transient",
    ),
    # A Retry-After longer than MAX_RETRY_DELAY_SECONDS: give up at once, never retry early.
    _case(
        "hub_retry_after_beyond_the_budget",
        "ScheduleHub asked to retry after 7200 s (Retry-After) on POST /api/v1/ingest/items, "
        "longer than MAX_RETRY_DELAY_SECONDS (60 s): gave up at once",
        service="schedulehub",
        call="ingest",
        server="emulator",
        faults="at=1:429,retry_after=7200",
        error="RetryAfterTooLongError",
        kind="transient",
    ),
    _case(
        "erp_retry_after_beyond_the_budget",
        "APISmith asked to retry after 7200 s (Retry-After) on GET /api/v1/entities",
        service="apismith",
        call="entities",
        server="emulator",
        faults="at=1:429,retry_after=7200",
        error="RetryAfterTooLongError",
        kind="transient",
    ),
    _case(
        "hub_retry_after_date_beyond_the_budget",
        "ScheduleHub asked to retry after",
        service="schedulehub",
        call="entities",
        server="scripted",
        answers=[
            _answer(
                503,
                PROBLEM,
                b'{"detail": "maintenance"}',
                Retry_After=formatdate(time.time() + 3 * 3600, usegmt=True),
            )
        ],
        error="RetryAfterTooLongError",
        kind="transient",
    ),
    # Server errors and refusals.
    _case(
        "hub_500_with_a_problem_document",
        "ScheduleHub ingest into 'items': HTTP 500: database is down",
        service="schedulehub",
        call="ingest",
        server="scripted",
        answers=[_json(500, {"title": "Internal Server Error", "detail": "database is down"})],
        error="ApiError",
        kind="permanent",
    ),
    _case(
        "hub_500_as_an_html_page",
        "ScheduleHub entity list: HTTP 500: <!DOCTYPE html> <html><body><h1>Sign in",
        service="schedulehub",
        call="entities",
        server="scripted",
        answers=[_html(500)],
        error="ApiError",
        kind="permanent",
    ),
    _case(
        "hub_502_html_from_a_proxy",
        "gave up after 2 retries; last failure: ScheduleHub entity list: HTTP 502 (<!DOCTYPE html>",
        service="schedulehub",
        call="entities",
        server="scripted",
        answers=[_html(502)],
        error="RetriesExhaustedError",
        kind="transient",
    ),
    _case(
        "hub_503_every_time",
        "/api/v1/ingest/items): gave up after 2 retries; last failure: ScheduleHub "
        "ingest into 'items': HTTP 503 (injected fault: unavailable)",
        service="schedulehub",
        call="ingest",
        server="emulator",
        faults="503=1",
        error="RetriesExhaustedError",
        kind="transient",
    ),
    _case(
        "hub_rejects_the_token",
        "ScheduleHub rejected the bearer token (HTTP 401",
        service="schedulehub",
        call="entities",
        server="emulator",
        token="not-the-token",
        error="AuthError",
        kind="permanent",
    ),
    _case(
        "erp_rejects_the_token",
        "APISmith rejected the bearer token (HTTP 401",
        service="apismith",
        call="count",
        server="emulator",
        token="not-the-token",
        error="AuthError",
        kind="permanent",
    ),
    _case(
        "hub_does_not_know_the_entity",
        "ScheduleHub ingest into 'no_such_entity': not found (HTTP 404",
        service="schedulehub",
        call="ingest_unknown",
        server="emulator",
        error="NotFoundError",
        kind="permanent",
    ),
    _case(
        "hub_refuses_a_malformed_batch",
        "ScheduleHub ingest into 'items': HTTP 422",
        service="schedulehub",
        call="ingest_malformed",
        server="emulator",
        error="ApiError",
        kind="permanent",
    ),
    _case(
        "hub_does_not_answer_in_time",
        "/api/v1/entities): gave up after 2 retries; last failure: timeout",
        service="schedulehub",
        call="entities",
        server="emulator",
        faults="latency=1:1500",
        timeout=0.2,
        error="RetriesExhaustedError",
        kind="transient",
    ),
    _case(
        "nobody_listens",
        "/api/v1/entities): gave up after 2 retries; last failure: connection failed",
        service="schedulehub",
        call="entities",
        server="nobody",
        error="RetriesExhaustedError",
        kind="transient",
    ),
]


@contextmanager
def _scripted(answers: list[tuple[int, str, bytes, dict[str, str]]]) -> Iterator[str]:
    """A server answering every request with the next answer (the last one repeats)."""
    queue = list(answers)

    async def answer(request: Request) -> Response:
        await request.body()
        status, content_type, body, headers = queue.pop(0) if len(queue) > 1 else queue[0]
        return Response(body, status_code=status, media_type=content_type, headers=headers)

    app = Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "POST"])])
    with serve_in_thread(app) as url:
        yield url


def _item(i: int) -> dict[str, object]:
    return {
        "external_id": f"{i:032x}",
        "op": "upsert",
        "data_hash": f"{i:064x}",
        "parents": [],
        "data": {
            "item_no": f"ITM-{i}",
            "item_type": "MAKE",
            "uom": "EA",
            "is_active": True,
            "created_on": "2026-01-02",
        },
    }


def _call(case: Case, url: str, token: str, sleeps: list[float]) -> object:
    policy = RetryPolicy(max_retries=2, base_delay=0.001, max_delay=60, sleep=sleeps.append)
    timeout = case.input.get("timeout", 10.0)
    call = case.input["call"]
    if case.input["service"] == "apismith":
        with ApiSmithClient(url, token, retry=policy, timeout=timeout) as erp:
            if call == "entities":
                return erp.entities()
            if call == "count":
                return erp.count("items")
            return erp.keys("items", ["ITEM_NO"])
    with ScheduleHubClient(url, token, retry=policy, timeout=timeout) as hub:
        if call == "entities":
            return hub.entities()
        if call == "records":
            return list(hub.records("items"))
        if call == "ingest_malformed":
            return hub.ingest_body("items", b'{"records": "none"}', 1)
        body = orjson.dumps({"batch_id": "b", "records": [_item(1), _item(2)]})
        entity = "no_such_entity" if call == "ingest_unknown" else "items"
        return hub.ingest_body(entity, body, 2)


def test_the_corpus_is_whole() -> None:
    assert len({c.name for c in CASES}) == len(CASES) >= 20
    assert {c.outcome_kind for c in CASES} <= {"clear_error", "dead_letter", "normalization"}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_answers_give_a_clear_error_naming_the_service(case: Case) -> None:
    service = case.input["service"]
    sleeps: list[float] = []
    with ExitStack() as stack:
        token = "token"
        if case.input["server"] == "scripted":
            url = stack.enter_context(_scripted(case.input["answers"]))
        elif case.input["server"] == "nobody":
            url = f"http://127.0.0.1:{free_port()}"
        elif service == "apismith":
            spec = DatasetSpec(seed=3, work_orders=5, items=5, work_centers=2)
            erp = stack.enter_context(
                running_apismith(spec, token=token, faults=case.input.get("faults"))
            )
            url = erp.url
        else:
            hub = stack.enter_context(
                running_schedulehub(token=token, faults=case.input.get("faults"))
            )
            url = hub.url
        with pytest.raises(SyncFlowError) as err:
            _call(case, url, case.input.get("token", token), sleeps)
    error = err.value
    message = str(error)
    assert type(error).__name__ == case.input["error"], message
    assert error_kind(error) == case.input["kind"]
    assert case.expected in message
    assert message.startswith("ScheduleHub" if service == "schedulehub" else "APISmith")
    if case.input["error"] == "AuthError":
        assert f"check {service.upper()}_TOKEN" in message
        assert "not-the-token" not in message
    if case.input["error"] == "RetryAfterTooLongError":
        assert sleeps == []  # never retried before the server's Retry-After
