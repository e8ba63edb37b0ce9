"""Each injected fault kind, as an httpx client sees it."""

import time

import httpx
import pytest

from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.emulators.common.faults import FaultPlan
from syncflow_dagster.testing.apismith import running_apismith

SPEC = DatasetSpec(seed=3, work_orders=300)
RECORDS = "/api/v1/entities/work_orders/records"


def test_each_fault_kind_is_observable() -> None:
    plan = FaultPlan(
        schedule={1: "429", 2: "503", 3: "drop", 4: "lost", 5: "latency"},
        latency_ms=400,
        retry_after=3,
    )
    with running_apismith(SPEC, faults=plan) as api, api.client(timeout=10) as client:
        limited = client.get(RECORDS)
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "3"
        assert limited.headers["content-type"] == "application/problem+json"
        assert limited.json()["status"] == 429

        unavailable = client.get(RECORDS)
        assert unavailable.status_code == 503
        assert unavailable.json()["status"] == 503

        with pytest.raises(httpx.RemoteProtocolError):
            client.get(RECORDS, params={"limit": 500})
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(RECORDS, params={"limit": 500})

        started = time.monotonic()
        slow = client.get(RECORDS)
        assert slow.status_code == 200
        assert time.monotonic() - started >= 0.4

        assert client.get(RECORDS).status_code == 200
        assert [kind for _, kind, _ in api.injector.injected] == [
            "429",
            "503",
            "drop",
            "lost",
            "latency",
        ]


def test_health_and_admin_are_never_faulted() -> None:
    with running_apismith(SPEC, faults="503=1.0") as api, api.client() as client:
        assert client.get("/api/v1/health").status_code == 200
        assert client.post("/admin/entities/items/update", json={"n": 1}).status_code == 200
        assert client.get(RECORDS).status_code == 503
        assert client.get("/api/v1/entities").status_code == 503


def test_rate_based_faults_hit_about_their_rate() -> None:
    with running_apismith(SPEC, faults="429=0.3,seed=5") as api, api.client() as client:
        statuses = [client.get("/api/v1/entities/items/count").status_code for _ in range(200)]
    limited = statuses.count(429)
    assert 30 <= limited <= 90
    assert set(statuses) == {200, 429}
    assert len(api.injector.injected) == limited


def test_unauthenticated_requests_do_not_consume_the_schedule() -> None:
    with running_apismith(SPEC, faults="at=1:503") as api:
        assert httpx.get(f"{api.url}{RECORDS}").status_code == 401
        with api.client() as client:
            assert client.get(RECORDS).status_code == 503
