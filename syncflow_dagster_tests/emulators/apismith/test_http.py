"""The read API rule by rule, over real HTTP on loopback."""

import httpx
import pytest

from syncflow_dagster.emulators.apismith import ENTITIES, ErpDataset
from syncflow_dagster.emulators.apismith.app import CONTRACT
from syncflow_dagster.testing.apismith import ApiSmithHandle, running_apismith
from syncflow_dagster_tests.emulators.apismith.conftest import SMALL
from syncflow_dagster_tests.emulators.apismith.paging import NDJSON, read_keys, read_records

API_PATHS = [
    "/api/v1/entities",
    "/api/v1/entities/work_orders/records",
    "/api/v1/entities/work_orders/keys",
    "/api/v1/entities/work_orders/count",
]


def _position(entity: str, record: dict[str, object]) -> tuple[object, ...]:
    return (record["ORA_ROWSCN"], *(record[k] for k in ENTITIES[entity].key))


def _assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str)
    return body


def test_health_needs_no_token(api: ApiSmithHandle) -> None:
    response = httpx.get(f"{api.url}/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_contract_is_served(api: ApiSmithHandle) -> None:
    response = httpx.get(f"{api.url}/openapi.yaml")
    assert response.status_code == 200
    assert response.content == CONTRACT.read_bytes()


@pytest.mark.parametrize("path", API_PATHS)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic abc", "Bearer"])
def test_missing_or_wrong_token_gets_401(
    api: ApiSmithHandle, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.get(f"{api.url}{path}", headers=headers)
    body = _assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert api.token not in response.text
    assert "token" in str(body["detail"])


def test_entities_describe_the_erp(api: ApiSmithHandle) -> None:
    with api.client() as client:
        body = client.get("/api/v1/entities").json()
    assert [e["name"] for e in body["entities"]] == list(ENTITIES)
    assert body["entities"][3]["key"] == ["WO_NO", "OP_SEQ"]
    assert all(e["rowversion"] == "ORA_ROWSCN" for e in body["entities"])


@pytest.mark.parametrize("what", ["records", "keys", "count"])
def test_unknown_entity_is_404(api: ApiSmithHandle, what: str) -> None:
    with api.client() as client:
        body = _assert_problem(client.get(f"/api/v1/entities/nothing/{what}"), 404)
    assert "nothing" in str(body["detail"])


def test_unknown_path_and_method(api: ApiSmithHandle) -> None:
    with api.client() as client:
        _assert_problem(client.get("/api/v1/nothing"), 404)
        response = client.post("/api/v1/entities/items/records")
        _assert_problem(response, 405)
        assert "GET" in response.headers["allow"]


BAD_RECORD_PARAMS = [
    {"limit": "0"},
    {"limit": "50001"},
    {"limit": "-5"},
    {"limit": "abc"},
    {"limit": "1.5"},
    {"limit": ""},
    {"since_rowversion": "-1"},
    {"since_rowversion": "x"},
    {"cursor": "not-a-cursor"},
    {"cursor": "WyJyIl0"},  # base64url of ["r"]
]


@pytest.mark.parametrize("params", BAD_RECORD_PARAMS)
def test_bad_record_parameters_are_400(api: ApiSmithHandle, params: dict[str, str]) -> None:
    with api.client() as client:
        _assert_problem(client.get("/api/v1/entities/items/records", params=params), 400)


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "50001"}, {"cursor": "%%%"}])
def test_bad_key_parameters_are_400(api: ApiSmithHandle, params: dict[str, str]) -> None:
    with api.client() as client:
        _assert_problem(client.get("/api/v1/entities/items/keys", params=params), 400)


def test_bad_count_parameter_is_400(api: ApiSmithHandle) -> None:
    with api.client() as client:
        response = client.get("/api/v1/entities/items/count", params={"since_rowversion": "-1"})
        _assert_problem(response, 400)


def test_cursors_are_not_interchangeable(api: ApiSmithHandle) -> None:
    with api.client() as client:
        records = client.get("/api/v1/entities/items/records", params={"limit": 1}).json()
        keys = client.get("/api/v1/entities/items/keys", params={"limit": 1}).json()
        for path, cursor in [
            ("/api/v1/entities/items/keys", records["next_cursor"]),
            ("/api/v1/entities/items/records", keys["next_cursor"]),
            ("/api/v1/entities/work_orders/records", records["next_cursor"]),
            ("/api/v1/entities/work_orders/keys", keys["next_cursor"]),
        ]:
            _assert_problem(client.get(path, params={"cursor": cursor}), 400)


@pytest.mark.parametrize("entity", list(ENTITIES))
def test_paging_yields_each_row_once_in_order(api: ApiSmithHandle, entity: str) -> None:
    with api.client() as client:
        records, pages = read_records(client, entity, limit=97)
        count = client.get(f"/api/v1/entities/{entity}/count").json()
    positions = [_position(entity, r) for r in records]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions) == count["count"]
    assert count["count"] == api.dataset.ground_truth(entity).height
    assert all(p["count"] == 97 for p in pages[:-1])
    assert pages[-1]["next_cursor"] is None
    offset = 0
    for page in pages:
        assert isinstance(page["count"], int)
        chunk = records[offset : offset + page["count"]]
        offset += page["count"]
        expected = max(r["ORA_ROWSCN"] for r in chunk) if chunk else None  # type: ignore[type-var]
        assert page["watermark"] == expected
    assert count["max_rowversion"] == records[-1]["ORA_ROWSCN"]


def test_default_limit_is_1000(api: ApiSmithHandle) -> None:
    with api.client() as client:
        body = client.get("/api/v1/entities/work_order_operations/records").json()
        keys = client.get("/api/v1/entities/work_order_operations/keys").json()
    assert len(body["records"]) == 1000
    assert len(keys["keys"]) == 1000


@pytest.mark.parametrize("entity", ["work_orders", "work_order_operations"])
def test_ndjson_and_json_carry_the_same_records(api: ApiSmithHandle, entity: str) -> None:
    with api.client() as client:
        as_json, json_pages = read_records(client, entity, limit=250)
        as_ndjson, ndjson_pages = read_records(client, entity, limit=250, ndjson=True)
        last = client.get(
            f"/api/v1/entities/{entity}/records",
            params={"cursor": json_pages[-2]["next_cursor"], "limit": 250},
            headers={"Accept": NDJSON},
        )
    assert as_ndjson == as_json
    assert [p["next_cursor"] for p in ndjson_pages] == [p["next_cursor"] for p in json_pages]
    assert "x-next-cursor" not in last.headers


def test_since_rowversion_returns_only_newer_rows(api: ApiSmithHandle) -> None:
    with api.client() as client:
        everything, _ = read_records(client, "work_orders", limit=5000)
        middle = int(everything[len(everything) // 2]["ORA_ROWSCN"])  # type: ignore[call-overload]
        newer, _ = read_records(client, "work_orders", limit=100, since=middle)
        count = client.get(
            "/api/v1/entities/work_orders/count", params={"since_rowversion": middle}
        )
    assert newer == [r for r in everything if r["ORA_ROWSCN"] > middle]  # type: ignore[operator]
    assert count.json()["count"] == len(newer)


def test_since_beyond_the_end_gives_an_empty_last_page(api: ApiSmithHandle) -> None:
    since = api.dataset.max_rowversion
    with api.client() as client:
        page = client.get("/api/v1/entities/items/records", params={"since_rowversion": since})
        lines = client.get(
            "/api/v1/entities/items/records",
            params={"since_rowversion": since},
            headers={"Accept": NDJSON},
        )
        count = client.get("/api/v1/entities/items/count", params={"since_rowversion": since})
    assert page.json() == {"entity": "items", "records": [], "next_cursor": None, "watermark": None}
    assert lines.content == b""
    assert "x-next-cursor" not in lines.headers
    assert count.json() == {"entity": "items", "count": 0, "max_rowversion": None}


@pytest.mark.parametrize("entity", list(ENTITIES))
def test_keys_are_complete_and_in_key_order(api: ApiSmithHandle, entity: str) -> None:
    with api.client() as client:
        keys = read_keys(client, entity, limit=77)
        records, _ = read_records(client, entity, limit=5000)
    as_tuples = [tuple(k) for k in keys]
    assert as_tuples == sorted(as_tuples)
    assert len(set(as_tuples)) == len(as_tuples)
    assert set(as_tuples) == {tuple(r[k] for k in ENTITIES[entity].key) for r in records}


def test_paging_continues_across_a_server_restart() -> None:
    with running_apismith(SMALL) as first, first.client() as client:
        head, pages = [], []
        cursor = None
        for _ in range(3):
            params: dict[str, object] = {"limit": 200}
            if cursor:
                params["cursor"] = cursor
            body = client.get(
                "/api/v1/entities/work_order_operations/records", params=params
            ).json()
            head.extend(body["records"])
            cursor = body["next_cursor"]
            pages.append(cursor)
    with running_apismith(dataset=ErpDataset(SMALL)) as second, second.client() as client:
        tail, _ = read_records(client, "work_order_operations", limit=500, cursor=cursor)
        everything, _ = read_records(client, "work_order_operations", limit=5000)
    assert head + tail == everything
