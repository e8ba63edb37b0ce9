"""The logging setup and the HTTP call trail: levels, formats, redaction, retries logged."""

import io
import json
import logging
from collections.abc import Iterator

import pytest
from prometheus_client import generate_latest

from syncflow_dagster.edges.apismith import ApiSmithClient
from syncflow_dagster.edges.retry import RetriesExhaustedError, RetryPolicy
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.logs import UPSTREAM_COUNTERS, Redactor, setup_logging
from syncflow_dagster.settings import load_settings
from syncflow_dagster.testing.apismith import running_apismith
from syncflow_dagster.testing.schedulehub import running_schedulehub

HUB_TOKEN = "hub-secret-token-123456"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Whatever SyncFlow logs, as the development format writes it."""
    out = io.StringIO()
    root = logging.getLogger()
    before = (root.level, list(root.handlers))
    handler = setup_logging(load_settings(app_env="development", log_level="INFO"), out)
    yield out
    root.removeHandler(handler)
    root.setLevel(before[0])


def _count(name: str, upstream: str) -> float:
    registry = UPSTREAM_COUNTERS.ensure().registry
    assert registry is not None
    value = registry.get_sample_value(name, {"upstream": upstream})
    return value or 0.0


def test_every_retry_is_logged_with_url_attempt_and_wait_never_the_token(
    captured: io.StringIO,
) -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(max_retries=3, base_delay=0.5, max_delay=2, sleep=sleeps.append)
    before = _count("syncflow_http_retries_total", "schedulehub")
    with (
        running_schedulehub(token=HUB_TOKEN, faults="at=1:503;2:503") as hub,
        ScheduleHubClient(hub.url, HUB_TOKEN, policy) as client,
    ):
        assert "items" in client.entities()
    lines = [line for line in captured.getvalue().splitlines() if "retrying in" in line]
    assert len(lines) == 2, captured.getvalue()
    assert f"GET {hub.url}/api/v1/entities failed (attempt 1)" in lines[0]
    assert "WARNING" in lines[0]
    assert f"retrying in {sleeps[0]:.1f} s" in lines[0]
    assert "attempt 2" in lines[1]
    assert HUB_TOKEN not in captured.getvalue()
    assert _count("syncflow_http_retries_total", "schedulehub") == before + 2


def test_a_call_that_gives_up_counts_as_a_failure(captured: io.StringIO) -> None:
    policy = RetryPolicy(max_retries=1, base_delay=0.01, max_delay=0.1, sleep=lambda s: None)
    before = _count("syncflow_http_failures_total", "apismith")
    with (
        running_apismith(DatasetSpec(work_orders=5), faults="at=1:503;2:503") as api,
        ApiSmithClient(api.url, api.token, policy) as client,
        pytest.raises(RetriesExhaustedError),
    ):
        client.entities()
    assert _count("syncflow_http_failures_total", "apismith") == before + 1
    assert api.token not in captured.getvalue()
    text = generate_latest(UPSTREAM_COUNTERS.ensure().registry).decode()  # type: ignore[arg-type]
    assert 'syncflow_http_failures_total{upstream="apismith"}' in text


def test_production_writes_json_lines_and_masks_secrets() -> None:
    out = io.StringIO()
    settings = load_settings(
        app_env="production", log_level="WARNING", apismith_token="s3cr3t-token"
    )
    handler = setup_logging(settings, out)
    try:
        log = logging.getLogger("syncflow_dagster.test")
        log.info("not shown at WARNING")
        log.warning("token %s leaked with Bearer abcdefgh12345", "s3cr3t-token", extra={"n": 3})
    finally:
        logging.getLogger().removeHandler(handler)
    [line] = out.getvalue().splitlines()
    doc = json.loads(line)
    assert doc["level"] == "WARNING" and doc["logger"] == "syncflow_dagster.test"
    assert doc["message"] == "token *** leaked with Bearer ***"
    assert doc["n"] == 3


def test_debug_turns_the_level_to_debug() -> None:
    out = io.StringIO()
    handler = setup_logging(load_settings(debug=True, log_level="ERROR"), out)
    try:
        logging.getLogger("syncflow_dagster.test").debug("visible")
    finally:
        logging.getLogger().removeHandler(handler)
    assert "visible" in out.getvalue()


def test_redactor_leaves_ordinary_words() -> None:
    redact = Redactor(["abc", "longer-secret"])
    assert redact("no bearer token; abc; longer-secret") == "no bearer token; abc; ***"
