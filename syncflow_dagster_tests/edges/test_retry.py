"""The retry policy: what is transient, how long it waits, when it gives up."""

import logging
import time
from collections.abc import Callable
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from syncflow_dagster.edges.apismith import ApiSmithClient
from syncflow_dagster.edges.http import REQUEST_EXTENSION, check_response
from syncflow_dagster.edges.retry import (
    TRANSIENT_STATUS,
    RetriesExhaustedError,
    RetryAfterTooLongError,
    RetryPolicy,
    TransientHTTPError,
    UnreachableError,
)
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.emulators.common.serving import free_port
from syncflow_dagster.errors import error_kind
from syncflow_dagster.orchestration.build import SECRET_SETTINGS, build_resources
from syncflow_dagster.settings import load_settings
from syncflow_dagster.testing.apismith import running_apismith


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


# --------------------------------------------------------------- the connect grace


def _closed_port_url() -> str:
    """A loopback URL nothing listens on (the port was just free)."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize("client", ["apismith", "schedulehub"])
def test_a_server_never_reached_fails_after_the_connect_grace_naming_the_url(
    client: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = _closed_port_url()
    policy = RetryPolicy(max_retries=3, base_delay=60, max_delay=3600, connect_grace=0.6)
    caplog.set_level(logging.WARNING, logger="syncflow_dagster")
    began = time.monotonic()
    with pytest.raises(UnreachableError) as err:
        if client == "apismith":
            with ApiSmithClient(url, "token-never-shown-1234", policy) as api:
                api.entities()
        else:
            with ScheduleHubClient(url, "token-never-shown-1234", policy) as hub:
                hub.entities()
    took = time.monotonic() - began
    # 0.6 s, not the 60 + 120 + 240 s of the backoff budget.
    assert 0.5 <= took < 5, took
    message = str(err.value)
    assert f"{url}/api/v1/entities" in message
    assert "CONNECT_GRACE_SECONDS=0.6" in message and "Connection refused" in message
    assert "token-never-shown" not in message
    assert isinstance(err.value, RetriesExhaustedError)
    assert error_kind(err.value) == "transient"
    # The waiting user was told, with the URL and the next wait, before it gave up.
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and f"{url}/api/v1/entities" in warnings[0], warnings
    assert "retrying in 0.6 s" in warnings[0]


def test_a_connect_grace_of_zero_fails_on_the_first_refusal() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(max_retries=3, base_delay=60, connect_grace=0, sleep=sleeps.append)
    with ApiSmithClient(_closed_port_url(), "t", policy) as api, pytest.raises(UnreachableError):
        api.entities()
    assert sleeps == []


def test_once_the_server_answered_a_refusal_gets_the_full_backoff_budget() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(
        max_retries=3, base_delay=60, max_delay=3600, connect_grace=0.5, sleep=sleeps.append
    )
    with running_apismith(DatasetSpec(work_orders=5)) as erp:
        client = ApiSmithClient(erp.url, erp.token, policy)
        assert "items" in client.entities()
    # The server is gone now (a restart, say): the full budget, as before.
    with pytest.raises(RetriesExhaustedError) as err:
        client.entities()
    client.close()
    assert not isinstance(err.value, UnreachableError)
    assert len(sleeps) == 3 and min(sleeps) >= 60
    assert f"({erp.url}/api/v1/entities): gave up after 3 retries" in str(err.value)


def test_without_a_grace_a_refusal_gets_the_full_budget_as_before() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(max_retries=2, base_delay=60, sleep=sleeps.append)
    with (
        ApiSmithClient(_closed_port_url(), "t", policy) as api,
        pytest.raises(RetriesExhaustedError) as err,
    ):
        api.entities()
    assert not isinstance(err.value, UnreachableError) and len(sleeps) == 2


def test_the_grace_reaches_the_resources_from_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in SECRET_SETTINGS:  # build_resources publishes them: restored after the test
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(connect_grace_seconds=3, data_dir=tmp_path)
    resources = build_resources(settings)
    for name in ("apismith", "schedulehub"):
        assert resources[name].retry_policy().connect_grace == 3
    assert load_settings(data_dir=tmp_path).connect_grace_seconds == 10
