"""Injected faults as an httpx client sees them; a batch applied before a lost answer stays."""

import time

import httpx
import pytest

from syncflow_dagster.testing.schedulehub import running_schedulehub
from syncflow_dagster_tests.emulators.schedulehub.factories import (
    hexid,
    item_data,
    post,
    statuses,
    upsert,
)


def _client(url: str, headers: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=url, headers=headers, timeout=10)


@pytest.mark.parametrize(("kind", "status"), [("429", 429), ("503", 503)])
def test_refusal_applies_nothing(kind: str, status: int) -> None:
    with (
        running_schedulehub(faults=f"at=1:{kind},retry_after=7") as hub,
        _client(hub.url, hub.headers) as client,
    ):
        batch = [upsert(hexid(), item_data())]
        response = post(client, "items", batch)
        assert response.status_code == status
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == status
        if status == 429:
            assert response.headers["retry-after"] == "7"
        assert hub.store.count("items") == 0
        assert statuses(post(client, "items", batch)) == ["created"]
        assert [kind for _, kind, _ in hub.injector.injected] == [kind]


def test_latency() -> None:
    with (
        running_schedulehub(faults="latency=1:300") as hub,
        _client(hub.url, hub.headers) as client,
    ):
        started = time.monotonic()
        assert statuses(post(client, "items", [upsert(hexid(), item_data())])) == ["created"]
        assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("kind", ["drop", "lost"])
def test_applied_but_answer_lost(kind: str) -> None:
    with running_schedulehub(faults=f"at=1:{kind}") as hub, _client(hub.url, hub.headers) as client:
        batch = [upsert(hexid(), item_data("IT-1")), upsert(hexid(), item_data("IT-2"))]
        with pytest.raises(httpx.TransportError):
            post(client, "items", batch)
        assert hub.store.count("items") == 2  # applied although the client got no answer
        assert statuses(post(client, "items", batch)) == ["unchanged", "unchanged"]
        assert [kind for _, kind, _ in hub.injector.injected] == [kind]


def test_health_is_never_faulted() -> None:
    with running_schedulehub(faults="503=1.0") as hub, _client(hub.url, hub.headers) as client:
        assert client.get("/api/v1/health").status_code == 200
        assert client.get("/api/v1/entities").status_code == 503
