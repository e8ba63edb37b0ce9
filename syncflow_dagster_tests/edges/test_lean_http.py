"""Requests over pooled http.client connections, against the emulators on loopback."""

import http.client
import socket

import httpx
import orjson
import pytest

from syncflow_dagster.edges.http import request_line
from syncflow_dagster.edges.lean_http import LeanHttp, bearer_client
from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.emulators.common.serving import free_port
from syncflow_dagster.testing.apismith import running_apismith
from syncflow_dagster.testing.schedulehub import running_schedulehub

JSON = {"Content-Type": "application/json"}


def _pool(url: str, token: str, timeout: float = 10.0) -> LeanHttp:
    return bearer_client(url, token, timeout, connections=2)


def _post(pool: LeanHttp, path: str, body: bytes) -> httpx.Response:
    return pool.request("POST", path, body=body, headers=JSON)


def _batch(batch_id: str) -> bytes:
    return orjson.dumps({"batch_id": batch_id, "records": []})


def test_answers_come_back_as_responses_and_connections_are_kept_alive() -> None:
    with running_schedulehub() as hub:
        pool = _pool(hub.url, hub.token)
        first = _post(pool, "/api/v1/ingest/items", _batch("a"))
        [conn] = pool._idle
        second = _post(pool, "/api/v1/ingest/items", _batch("b"))
        assert pool._idle == [conn]  # the same connection served both
        unknown = _post(pool, "/api/v1/ingest/no_such_entity", _batch("c"))
        unauthorized = _post(_pool(hub.url, "wrong"), "/api/v1/ingest/items", _batch("d"))
        pool.close()
    assert (first.status_code, orjson.loads(first.content)["batch_id"]) == (200, "a")
    assert orjson.loads(second.content)["batch_id"] == "b"
    assert unknown.status_code == 404 and "no_such_entity" in unknown.text
    assert unauthorized.status_code == 401
    assert pool._idle == []


def test_an_idle_connection_the_server_closed_is_replaced_before_use() -> None:
    with running_schedulehub() as hub:
        pool = _pool(hub.url, hub.token)
        _post(pool, "/api/v1/ingest/items", _batch("a"))
        [conn] = pool._idle
        assert conn.sock is not None
        conn.sock.shutdown(socket.SHUT_RD)  # reads as EOF, as after the server's close
        answer = _post(pool, "/api/v1/ingest/items", _batch("b"))
        assert answer.status_code == 200
        assert pool._idle and pool._idle[0] is not conn


def test_no_answer_in_time_is_an_httpx_timeout() -> None:
    with running_schedulehub(faults="at=1:latency,latency=0:2000") as hub:
        pool = _pool(hub.url, hub.token, timeout=0.3)
        with pytest.raises(httpx.TimeoutException):
            _post(pool, "/api/v1/ingest/items", _batch("a"))
        assert pool._idle == []  # a timed-out connection is not reused
        assert _post(pool, "/api/v1/ingest/items", _batch("b")).status_code == 200


@pytest.mark.parametrize("fault", ["drop", "lost"])
def test_a_dropped_answer_is_an_httpx_transport_error(fault: str) -> None:
    with running_schedulehub(faults=f"at=1:{fault}") as hub:
        pool = _pool(hub.url, hub.token)
        with pytest.raises(httpx.TransportError):
            _post(pool, "/api/v1/ingest/items", _batch("a"))
        assert _post(pool, "/api/v1/ingest/items", _batch("b")).status_code == 200


def test_a_refused_connection_is_an_httpx_transport_error() -> None:
    pool = _pool(f"http://127.0.0.1:{free_port()}", "t")
    with pytest.raises(httpx.ConnectError, match="ConnectionRefused"):
        _post(pool, "/api/v1/ingest/items", _batch("a"))


def test_https_urls_get_verifying_tls_connections_and_other_schemes_are_refused() -> None:
    pool = LeanHttp("https://hub.example:8443/base", {}, 1.0, size=1)
    conn = pool._new()
    assert isinstance(conn, http.client.HTTPSConnection)
    assert (conn.host, conn.port) == ("hub.example", 8443)
    assert pool._prefix == "/base"
    with pytest.raises(ValueError, match="http"):
        LeanHttp("ftp://hub.example", {}, 1.0, size=1)
    with pytest.raises(ValueError) as err:
        LeanHttp("ftp://user:tok-SECRET@hub.example/?token=SECRET2", {}, 1.0, size=1)
    assert "SECRET" not in str(err.value)


def test_answers_note_the_request_they_answer() -> None:
    with running_schedulehub() as hub:
        pool = LeanHttp(hub.url + "/", {"Authorization": f"Bearer {hub.token}"}, 10.0, size=1)
        answer = pool.request("GET", "/api/v1/entities", params={"limit": 5})
    assert request_line(answer) == "GET /api/v1/entities"


def test_gets_carry_query_parameters_and_read_whole_bodies() -> None:
    with running_apismith(DatasetSpec(seed=1, work_orders=120), token="t") as api:
        pool = _pool(api.url, "t")
        page = pool.request(
            "GET",
            "/api/v1/entities/work_orders/records",
            params={"limit": 50},
            headers={"Accept": "application/x-ndjson"},
        )
        cursor = page.headers["x-next-cursor"]
        rest = pool.request(
            "GET",
            "/api/v1/entities/work_orders/records",
            params={"limit": 500, "cursor": cursor},
            headers={"Accept": "application/x-ndjson"},
        )
    assert page.status_code == 200 and page.content.count(b"\n") == 50
    assert rest.content.count(b"\n") == api.dataset.ground_truth("work_orders").height - 50
    assert "x-next-cursor" not in rest.headers
