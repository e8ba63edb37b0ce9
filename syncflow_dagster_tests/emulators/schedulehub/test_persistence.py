"""A SQLite file keeps what was ingested across restarts, also after a crash."""

import sqlite3
from contextlib import closing
from pathlib import Path

import httpx

from syncflow_dagster.emulators.schedulehub.journal import CHUNK
from syncflow_dagster.testing.schedulehub import running_schedulehub, schedulehub_process
from syncflow_dagster_tests.emulators.schedulehub.factories import (
    delete,
    hexhash,
    hexid,
    item_data,
    post,
    statuses,
    upsert,
    wo_data,
)


def _journal_rows(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT count(*) FROM journal").fetchone()[0])


def test_restart_keeps_records_and_parent_links(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    item, spare, wo = hexid(), hexid(), hexid()
    with (
        running_schedulehub(db_path=db) as hub,
        httpx.Client(base_url=hub.url, headers=hub.headers) as c,
    ):
        post(c, "items", [upsert(item, item_data("IT-1")), upsert(spare, item_data("IT-2"))])
        post(c, "work_orders", [upsert(wo, wo_data(), hexhash(1), [("items", item)])])
        post(
            c,
            "items",
            [upsert(spare, item_data("IT-2b"), hexhash(5)), upsert(hexid(), item_data("IT-3"))],
        )
        post(c, "items", [delete(spare)])
        before = {e: hub.store.records(e) for e in ("items", "work_orders")}
    assert _journal_rows(db) == 4
    with (
        running_schedulehub(db_path=db) as hub,
        httpx.Client(base_url=hub.url, headers=hub.headers) as c,
    ):
        assert {e: hub.store.records(e) for e in ("items", "work_orders")} == before
        assert (
            c.get(f"/api/v1/entities/work_orders/records/{wo}").json() == before["work_orders"][0]
        )
        assert statuses(
            post(c, "work_orders", [upsert(wo, wo_data(), hexhash(1), [("items", item)])])
        ) == ["unchanged"]
        response = post(c, "items", [delete(item)])
        assert statuses(response) == ["rejected"]
        assert response.json()["results"][0]["error"]["code"] == "has_children"
    assert _journal_rows(db) == 2  # compacted on open: one snapshot row per entity


def test_compaction_chunks_large_entities(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    n = CHUNK + 5
    with (
        running_schedulehub(db_path=db) as hub,
        httpx.Client(base_url=hub.url, headers=hub.headers) as c,
    ):
        for start in range(0, n, 1000):
            records = [
                upsert(f"{i:032x}", item_data(f"IT-{i}"))
                for i in range(start, min(n, start + 1000))
            ]
            assert set(statuses(post(c, "items", records))) == {"created"}
        post(c, "items", [upsert(f"{7:032x}", item_data("IT-7b"), hexhash(7))])
    with running_schedulehub(db_path=db) as hub:
        assert hub.store.count("items") == n
        assert hub.store.get("items", f"{7:032x}")["data"]["item_no"] == "IT-7b"  # type: ignore[index]
    assert _journal_rows(db) == 2


def test_killed_process_keeps_acknowledged_batches(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    batch = [upsert(hexid(), item_data()) for _ in range(3)]
    ids = sorted(r["external_id"] for r in batch)
    with schedulehub_process(db_path=db) as hub:
        auth = {"Authorization": f"Bearer {hub.token}"}
        with httpx.Client(base_url=hub.url, headers=auth) as c:
            assert statuses(post(c, "items", batch)) == ["created"] * 3
        hub.kill()
    with (
        schedulehub_process(db_path=db) as hub,
        httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {hub.token}"}) as c,
    ):
        page = c.get("/api/v1/entities/items/records").json()
        assert sorted(r["external_id"] for r in page["records"]) == ids
        assert statuses(post(c, "items", batch)) == ["unchanged"] * 3


def test_memory_mode_starts_empty(tmp_path: Path) -> None:
    with running_schedulehub() as hub, httpx.Client(base_url=hub.url, headers=hub.headers) as c:
        post(c, "items", [upsert(hexid(), item_data())])
    with running_schedulehub() as hub:
        assert hub.store.count("items") == 0
