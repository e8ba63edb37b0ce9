"""The contract's rules, one by one, over real HTTP."""

from pathlib import Path
from typing import Any

import httpx
import pytest

from syncflow_dagster.testing.schedulehub import RunningScheduleHub, running_schedulehub
from syncflow_dagster_tests.emulators.schedulehub.factories import (
    delete,
    errors,
    hexhash,
    hexid,
    item_data,
    post,
    statuses,
    upsert,
    wo_data,
    write_schemas,
)

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    doc = response.json()
    assert doc["status"] == status and doc["title"] and doc["detail"]
    return doc


# --- auth and public paths -------------------------------------------------


def test_health_needs_no_auth(hub: RunningScheduleHub) -> None:
    response = httpx.get(f"{hub.url}/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_contract_is_served(hub: RunningScheduleHub) -> None:
    response = httpx.get(f"{hub.url}/openapi.yaml")
    assert response.status_code == 200
    assert "ScheduleHub" in response.text and "/api/v1/ingest/{entity}" in response.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/entities"),
        ("POST", "/api/v1/ingest/items"),
        ("GET", "/api/v1/entities/items/records"),
        ("GET", f"/api/v1/entities/items/records/{'a' * 32}"),
    ],
)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic abc"])
def test_auth_is_required(
    hub: RunningScheduleHub, method: str, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    body = {"batch_id": "b", "records": [upsert(hexid(), item_data())]}
    response = httpx.request(method, hub.url + path, headers=headers, json=body)
    doc = assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert hub.token not in response.text and hub.token not in str(doc)
    assert hub.store.count("items") == 0


def test_entities_are_the_schema_file(client: httpx.Client) -> None:
    entities = {e["name"]: e for e in client.get("/api/v1/entities").json()["entities"]}
    assert list(entities) == ["items", "work_centers", "work_orders", "operations"]
    assert entities["operations"]["parents"] == ["work_orders", "work_centers"]
    fields = {f["name"]: f for f in entities["work_orders"]["fields"]}
    assert len(fields) == 11
    assert fields["quantity"] == {"name": "quantity", "type": "number", "required": True}
    assert fields["released_at"] == {"name": "released_at", "type": "datetime", "required": False}


# --- whole-request refusals --------------------------------------------------


def test_unknown_entity_is_404(client: httpx.Client, hub: RunningScheduleHub) -> None:
    assert_problem(post(client, "widgets", [upsert(hexid(), item_data())]), 404)
    assert_problem(client.get("/api/v1/entities/widgets/records"), 404)
    assert_problem(client.get(f"/api/v1/entities/widgets/records/{hexid()}"), 404)


def test_more_than_1000_records_is_413_and_nothing_applied(
    client: httpx.Client, hub: RunningScheduleHub
) -> None:
    records = [upsert(hexid(), item_data(f"IT-{i}")) for i in range(1001)]
    assert_problem(post(client, "items", records), 413)
    assert hub.store.count("items") == 0
    assert statuses(post(client, "items", records[:1000])) == ["created"] * 1000


MALFORMED: list[tuple[str, Any]] = [
    ("not json", b"{not json"),
    ("not an object", b"[1, 2]"),
    ("no batch_id", {"records": []}),
    ("batch_id not a string", {"batch_id": 7, "records": []}),
    ("no records", {"batch_id": "b"}),
    ("records not an array", {"batch_id": "b", "records": {}}),
    ("record not an object", {"batch_id": "b", "records": ["x"]}),
    ("no external_id", {"batch_id": "b", "records": [{"op": "delete"}]}),
    ("external_id uppercase", {"batch_id": "b", "records": [delete("A" * 32)]}),
    ("external_id too short", {"batch_id": "b", "records": [delete("a" * 31)]}),
    (
        "external_id not a string",
        {"batch_id": "b", "records": [{"external_id": 5, "op": "delete"}]},
    ),
    ("no op", {"batch_id": "b", "records": [{"external_id": "a" * 32}]}),
    ("bad op", {"batch_id": "b", "records": [{"external_id": "a" * 32, "op": "merge"}]}),
    (
        "upsert without data",
        {
            "batch_id": "b",
            "records": [{"external_id": "a" * 32, "op": "upsert", "data_hash": hexhash()}],
        },
    ),
    (
        "upsert without data_hash",
        {
            "batch_id": "b",
            "records": [{"external_id": "a" * 32, "op": "upsert", "data": item_data()}],
        },
    ),
    (
        "data not an object",
        {"batch_id": "b", "records": [{**upsert("a" * 32, item_data()), "data": [1]}]},
    ),
    (
        "bad data_hash",
        {"batch_id": "b", "records": [{**upsert("a" * 32, item_data()), "data_hash": "xyz"}]},
    ),
    (
        "parents not a list",
        {
            "batch_id": "b",
            "records": [{**upsert("a" * 32, wo_data()), "parents": {"entity": "items"}}],
        },
    ),
    (
        "parent without external_id",
        {
            "batch_id": "b",
            "records": [{**upsert("a" * 32, wo_data()), "parents": [{"entity": "items"}]}],
        },
    ),
    (
        "parent not an object",
        {"batch_id": "b", "records": [{**upsert("a" * 32, wo_data()), "parents": ["items"]}]},
    ),
    (
        "parent external_id bad",
        {
            "batch_id": "b",
            "records": [
                {
                    **upsert("a" * 32, wo_data()),
                    "parents": [{"entity": "items", "external_id": "1"}],
                }
            ],
        },
    ),
]


@pytest.mark.parametrize(("case", "body"), MALFORMED, ids=[c for c, _ in MALFORMED])
def test_malformed_body_is_422_and_nothing_applied(
    client: httpx.Client, hub: RunningScheduleHub, case: str, body: Any
) -> None:
    good = upsert(hexid(), item_data())
    if isinstance(body, dict) and isinstance(body.get("records"), list):
        body = {**body, "records": [good, *body["records"]]}  # a valid record first
    content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
    response = client.post(
        "/api/v1/ingest/items", content=content, headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 422)
    assert hub.store.count("items") == 0


def test_422_detail_names_the_place(client: httpx.Client) -> None:
    records = [upsert(hexid(), item_data()), {"external_id": "a" * 32, "op": "merge"}]
    doc = assert_problem(post(client, "items", records), 422)
    assert "records[1].op" in doc["detail"]


# --- statuses -----------------------------------------------------------------


def test_created_updated_unchanged_deleted_not_found(
    client: httpx.Client, hub: RunningScheduleHub
) -> None:
    a, b = hexid(), hexid()
    v1 = upsert(a, item_data("IT-A"), hexhash(1))
    assert statuses(post(client, "items", [v1, upsert(b, item_data("IT-B"), hexhash(2))])) == [
        "created",
        "created",
    ]
    assert statuses(post(client, "items", [v1])) == ["unchanged"]
    v2 = upsert(a, item_data("IT-A", description="new"), hexhash(3))
    assert statuses(post(client, "items", [v2])) == ["updated"]
    stored = hub.store.get("items", a)
    assert stored is not None
    assert stored["data"] == item_data("IT-A", description="new")
    assert stored["data_hash"] == hexhash(3)
    assert statuses(post(client, "items", [delete(a), delete(a), delete(hexid())])) == [
        "deleted",
        "not_found",
        "not_found",
    ]
    assert hub.store.count("items") == 1


def test_unchanged_writes_nothing(client: httpx.Client, hub: RunningScheduleHub) -> None:
    a = hexid()
    post(client, "items", [upsert(a, item_data("IT-A"), hexhash(1))])
    before = hub.store.get("items", a)
    # Same hash, different data: the hub trusts the hash and keeps what it has.
    assert statuses(post(client, "items", [upsert(a, item_data("IT-Z"), hexhash(1))])) == [
        "unchanged"
    ]
    assert hub.store.get("items", a) == before


def test_missing_parent(client: httpx.Client, hub: RunningScheduleHub) -> None:
    item, absent = hexid(), hexid()
    post(client, "items", [upsert(item, item_data())])
    wo_ok, wo_bad = hexid(), hexid()
    response = post(
        client,
        "work_orders",
        [
            upsert(wo_bad, wo_data("WO-1"), parents=[("items", item), ("items", absent)]),
            upsert(wo_ok, wo_data("WO-2"), parents=[("items", item)]),
        ],
    )
    assert statuses(response) == ["rejected", "created"]
    code, detail = errors(response)[0]  # type: ignore[misc]
    assert code == "missing_parent" and absent in detail
    assert hub.store.get("work_orders", wo_bad) is None


def test_parent_of_a_disallowed_entity_is_invalid_record(client: httpx.Client) -> None:
    center = hexid()
    post(client, "work_centers", [upsert(center, {"code": "C", "name": "N", "is_active": True})])
    response = post(
        client, "work_orders", [upsert(hexid(), wo_data(), parents=[("work_centers", center)])]
    )
    assert statuses(response) == ["rejected"]
    code, detail = errors(response)[0]  # type: ignore[misc]
    assert code == "invalid_record" and "work_centers" in detail


def test_has_children_until_the_children_are_gone(
    client: httpx.Client, hub: RunningScheduleHub
) -> None:
    item, wo = hexid(), hexid()
    post(client, "items", [upsert(item, item_data())])
    post(client, "work_orders", [upsert(wo, wo_data(), parents=[("items", item)])])
    response = post(client, "items", [delete(item)])
    assert statuses(response) == ["rejected"]
    assert errors(response)[0][0] == "has_children"  # type: ignore[index]
    assert hub.store.children("items", item) == 1
    # Re-parenting the child frees the item too.
    other = hexid()
    post(client, "items", [upsert(other, item_data("IT-2"))])
    post(client, "work_orders", [upsert(wo, wo_data(notes="moved"), parents=[("items", other)])])
    assert statuses(post(client, "items", [delete(item)])) == ["deleted"]
    assert statuses(post(client, "work_orders", [delete(wo)])) == ["deleted"]
    assert statuses(post(client, "items", [delete(other)])) == ["deleted"]


INVALID: list[tuple[dict[str, Any], str, str]] = [
    (wo_data(colour="red"), "colour", "not in the schema"),
    ({"order_no": "W", "item_no": "I", "quantity": 1}, "status", "missing"),
    (wo_data(status=None), "status", "must not be null"),
    (wo_data(order_no=12), "order_no", "a string"),
    (wo_data(priority=1.5), "priority", "an integer"),
    (wo_data(priority=True), "priority", "an integer"),
    (wo_data(priority="1"), "priority", "an integer"),
    (wo_data(quantity=False), "quantity", "a number"),
    (wo_data(quantity="5"), "quantity", "a number"),
    (wo_data(start_date="2024-02-30"), "start_date", "a date"),
    (wo_data(start_date="2024-1-05"), "start_date", "a date"),
    (wo_data(start_date="20240105"), "start_date", "a date"),
    (wo_data(start_date="2024-01-05T00:00:00Z"), "start_date", "a date"),
    (wo_data(released_at="2024-01-05T08:00:00"), "released_at", "a datetime"),
    (wo_data(released_at="2024-01-05 08:00:00Z"), "released_at", "a datetime"),
    (wo_data(released_at="2024-01-05T25:00:00Z"), "released_at", "a datetime"),
    (wo_data(released_at="2024-01-05"), "released_at", "a datetime"),
    (wo_data(released_at=20240105), "released_at", "a datetime"),
]


@pytest.mark.parametrize(
    ("data", "field", "words"), INVALID, ids=[f"{f}-{w}" for _, f, w in INVALID]
)
def test_invalid_record_names_the_field(
    client: httpx.Client, data: dict[str, Any], field: str, words: str
) -> None:
    item = hexid()
    post(client, "items", [upsert(item, item_data())])
    ok = upsert(hexid(), wo_data("WO-OK"), parents=[("items", item)])
    bad = upsert(hexid(), data, parents=[("items", item)])
    response = post(client, "work_orders", [ok, bad, ok | {"external_id": hexid()}])
    assert statuses(response) == ["created", "rejected", "created"]
    code, detail = errors(response)[1]  # type: ignore[misc]
    assert code == "invalid_record"
    assert repr(field) in detail and words in detail


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("released_at", "2024-01-05T08:00:00Z"),
        ("released_at", "2024-01-05T08:00:00.123456+01:00"),
        ("released_at", "2024-01-05T08:00-05:00"),
        ("start_date", "2024-02-29"),
        ("quantity", 5),
        ("quantity", 5.25),
        ("priority", -3),
        ("notes", None),
        ("completed_quantity", None),
    ],
)
def test_valid_values_are_accepted(client: httpx.Client, field: str, value: Any) -> None:
    item = hexid()
    post(client, "items", [upsert(item, item_data())])
    response = post(
        client,
        "work_orders",
        [upsert(hexid(), wo_data(**{field: value}), parents=[("items", item)])],
    )
    assert statuses(response) == ["created"]


def test_records_apply_in_request_order(client: httpx.Client, hub: RunningScheduleHub) -> None:
    a = hexid()
    records = [
        upsert(a, item_data("IT-1"), hexhash(1)),
        delete(a),
        upsert(a, item_data("IT-2"), hexhash(2)),
        upsert(a, item_data("IT-2"), hexhash(2)),
        upsert(a, item_data("IT-3"), hexhash(3)),
    ]
    assert statuses(post(client, "items", records)) == [
        "created",
        "deleted",
        "created",
        "unchanged",
        "updated",
    ]
    stored = hub.store.get("items", a)
    assert stored is not None and stored["data"]["item_no"] == "IT-3"


def test_resending_a_batch_is_idempotent(client: httpx.Client, hub: RunningScheduleHub) -> None:
    item, gone = hexid(), hexid()
    post(client, "items", [upsert(gone, item_data("IT-GONE"))])
    batch = [
        upsert(item, item_data()),
        upsert(hexid(), item_data("IT-2")),
        delete(gone),
    ]
    assert statuses(post(client, "items", batch)) == ["created", "created", "deleted"]
    snapshot = hub.store.records("items")
    assert statuses(post(client, "items", batch)) == ["unchanged", "unchanged", "not_found"]
    assert hub.store.records("items") == snapshot


def test_results_echo_batch_id_and_ids(client: httpx.Client) -> None:
    ids = [hexid() for _ in range(3)]
    response = post(client, "items", [upsert(i, item_data()) for i in ids], batch_id='b "1"\n')
    doc = response.json()
    assert doc["batch_id"] == 'b "1"\n'
    assert [r["external_id"] for r in doc["results"]] == ids
    assert all("error" not in r for r in doc["results"])


def test_empty_batch(client: httpx.Client) -> None:
    assert post(client, "items", []).json() == {"batch_id": "b", "results": []}


# --- reading back ---------------------------------------------------------------


def test_one_record(client: httpx.Client, hub: RunningScheduleHub) -> None:
    item, wo = hexid(), hexid()
    post(client, "items", [upsert(item, item_data())])
    post(
        client,
        "work_orders",
        [upsert(wo, wo_data(notes='ñ "q" },{'), hexhash(9), [("items", item)])],
    )
    doc = client.get(f"/api/v1/entities/work_orders/records/{wo}").json()
    assert doc["external_id"] == wo
    assert doc["data"] == wo_data(notes='ñ "q" },{')
    assert doc["data_hash"] == hexhash(9)
    assert doc["parents"] == [{"entity": "items", "external_id": item}]
    assert doc["updated_at"].endswith("Z")
    assert doc == hub.store.get("work_orders", wo)
    assert_problem(client.get(f"/api/v1/entities/work_orders/records/{hexid()}"), 404)
    assert_problem(client.get("/api/v1/entities/work_orders/records/not-an-id"), 404)


def test_keyset_paging(client: httpx.Client, hub: RunningScheduleHub) -> None:
    ids = [hexid() for _ in range(25)]
    post(client, "items", [upsert(i, item_data(f"IT-{i}")) for i in reversed(ids)])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        doc = client.get("/api/v1/entities/items/records", params=params).json()
        seen += [r["external_id"] for r in doc["records"]]
        pages += 1
        cursor = doc["next_cursor"]
        if cursor is None:
            break
        # Records added behind the cursor do not shift the pages still to come.
        post(client, "items", [upsert("0" * 32, item_data("IT-FIRST"))])
    assert seen == sorted(ids) and pages == 3
    everything = client.get("/api/v1/entities/items/records", params={"limit": 10000}).json()
    assert everything["next_cursor"] is None
    assert everything["records"] == hub.store.records("items")
    default = client.get("/api/v1/entities/items/records").json()
    assert len(default["records"]) == 26


@pytest.mark.parametrize("limit", ["0", "10001", "-1", "abc", "1.5"])
def test_bad_limit_is_422(client: httpx.Client, limit: str) -> None:
    assert_problem(client.get("/api/v1/entities/items/records", params={"limit": limit}), 422)


def test_unknown_route_and_method_are_problems(client: httpx.Client) -> None:
    assert_problem(client.get("/api/v1/nothing"), 404)
    assert_problem(client.delete("/api/v1/entities"), 405)


def test_a_parent_earlier_in_the_batch_counts(tmp_path: Path) -> None:
    """With an entity that may be its own parent (tasks under tasks), over HTTP."""
    with (
        running_schedulehub(schemas_path=write_schemas(tmp_path)) as hub,
        httpx.Client(base_url=hub.url, headers=hub.headers) as client,
    ):
        top, child, orphan = hexid(), hexid(), hexid()
        response = post(
            client,
            "tasks",
            [
                upsert(child, {"title": "early"}, parents=[("tasks", top)]),  # top not yet there
                upsert(top, {"title": "top"}),
                upsert(child, {"title": "child"}, parents=[("tasks", top)]),  # now it is
                delete(top),  # still named by child
                delete(child),
                delete(top),  # free now
                upsert(orphan, {"title": "o"}, parents=[("tasks", top)]),  # gone again
            ],
        )
        assert statuses(response) == [
            "rejected",
            "created",
            "created",
            "rejected",
            "deleted",
            "deleted",
            "rejected",
        ]
        codes = [e[0] if e else None for e in errors(response)]
        assert codes == ["missing_parent", None, None, "has_children", None, None, "missing_parent"]
        assert hub.store.count("tasks") == 0
