"""The retry policy: what is transient, how long it waits, when it gives up."""

import time
from collections.abc import Callable
from email.utils import formatdate

import httpx
import pytest

from syncflow_dagster.edges.http import REQUEST_EXTENSION, check_response
from syncflow_dagster.edges.retry import (
    TRANSIENT_STATUS,
    RetriesExhaustedError,
    RetryAfterTooLongError,
    RetryPolicy,
    TransientHTTPError,
)
from syncflow_dagster.errors import error_kind


def _policy(sleeps: list[float], max_delay: float = 5.0, retries: int = 3) -> RetryPolicy:
    return RetryPolicy(
        max_retries=retries, base_delay=0.01, max_delay=max_delay, sleep=sleeps.append
    )


def _answer(status: int, retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(
        status,
        headers=headers,
        content=b'{"detail": "slow down"}',
        extensions={REQUEST_EXTENSION: "POST /api/v1/ingest/items"},
    )


def _failing_then_ok(failures: list[httpx.Response]) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def once() -> str:
        calls.append(1)
        if len(calls) <= len(failures):
            check_response("ScheduleHub", "SCHEDULEHUB_TOKEN", "ingest", failures[len(calls) - 1])
        return "ok"

    return calls, once


def test_408_is_transient_and_retried() -> None:
    assert 408 in TRANSIENT_STATUS
    sleeps: list[float] = []
    calls, once = _failing_then_ok([_answer(408)])
    assert _policy(sleeps).call("ScheduleHub ingest", once) == "ok"
    assert len(calls) == 2 and len(sleeps) == 1


def test_a_retry_after_within_the_budget_is_waited_in_full() -> None:
    sleeps: list[float] = []
    calls, once = _failing_then_ok([_answer(429, "4")])
    _policy(sleeps, max_delay=5).call("ScheduleHub ingest", once)
    assert sleeps == [4.0] and len(calls) == 2


def test_a_retry_after_beyond_the_budget_gives_up_at_once_naming_server_path_and_wait() -> None:
    sleeps: list[float] = []
    calls, once = _failing_then_ok([_answer(429, "20")])
    with pytest.raises(RetryAfterTooLongError) as err:
        _policy(sleeps, max_delay=5).call("ScheduleHub ingest", once)
    assert calls == [1] and sleeps == []  # never retried before the server's 20 s
    message = str(err.value)
    assert "ScheduleHub asked to retry after 20 s (Retry-After)" in message
    assert "POST /api/v1/ingest/items" in message
    assert "MAX_RETRY_DELAY_SECONDS (5 s)" in message
    assert (err.value.retry_after, err.value.budget) == (20, 5)
    assert error_kind(err.value) == "transient"


def test_a_retry_after_date_beyond_the_budget_gives_up_too() -> None:
    later = formatdate(time.time() + 7200, usegmt=True)
    calls, once = _failing_then_ok([_answer(503, later)])
    with pytest.raises(RetryAfterTooLongError, match="Retry-After"):
        _policy([], max_delay=60).call("ScheduleHub ingest", once)
    assert calls == [1]


def test_backoff_stays_within_base_and_max_and_never_undercuts_retry_after() -> None:
    policy = RetryPolicy(max_retries=10, base_delay=1, max_delay=8)
    assert all(1 <= policy.delay(n, None) <= 8 for n in range(1, 10))
    assert policy.delay(1, 7.5) >= 7.5
    assert policy.delay(9, 8) == 8


def test_retries_are_bounded_and_name_the_last_failure() -> None:
    def always() -> None:
        raise TransientHTTPError("ScheduleHub ingest: HTTP 408 (timeout)")

    sleeps: list[float] = []
    with pytest.raises(RetriesExhaustedError, match=r"after 2 retries; last failure: .*HTTP 408"):
        _policy(sleeps, retries=2).call("ScheduleHub ingest", always)
    assert len(sleeps) == 2
