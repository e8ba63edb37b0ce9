import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.edges.state.pending import PENDING_SCHEMA

from .conftest import state_rows

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
PARENT = {"entity": "work_orders", "bk_hash": "ab" * 16}


def _children(
    n: int, offset: int = 0, version: str = "v1", due: datetime | None = None
) -> pl.DataFrame:
    rows = state_rows(n, offset=offset)
    return pl.DataFrame(
        {
            "bk_hash": rows["bk_hash"],
            "rowversion": rows["rowversion"],
            "payload": [
                json.dumps({"data": {"seq": i, "v": version}, "data_hash": h})
                for i, h in enumerate(rows["data_hash"])
            ],
            "waiting_for": [json.dumps([PARENT])] * n,
            "next_retry_at": [due] * n,
        },
        schema_overrides={"next_retry_at": pl.Datetime("us", "UTC")},
    )


def test_add_and_list_waiting(store: StateStore, batch: int) -> None:
    children = _children(3, due=NOW)
    assert store.add_pending("operations", batch, children) == 3
    waiting = store.waiting_pending("operations")
    assert waiting.select("bk_hash", "rowversion", "payload", "waiting_for").rows() == (
        children.select("bk_hash", "rowversion", "payload", "waiting_for").rows()
    )
    assert waiting["attempts"].to_list() == [0, 0, 0]
    assert waiting["status"].to_list() == ["waiting"] * 3
    assert waiting["batch_id"].to_list() == [batch] * 3
    assert waiting["next_retry_at"].to_list() == [NOW] * 3
    assert json.loads(waiting["waiting_for"][0]) == [PARENT]
    assert store.count_pending("operations") == 3
    assert store.count_pending() == 3
    assert store.waiting_pending("items").is_empty()


def test_requeue_updates_in_place_and_keeps_the_backoff(store: StateStore, batch: int) -> None:
    store.add_pending("operations", batch, _children(3, due=NOW))
    batch2 = store.start_batch("operations", "run-2", "retry")
    later = NOW + timedelta(hours=1)
    assert store.add_pending("operations", batch2, _children(2, version="v2", due=later)) == 2
    store.add_pending("operations", batch2, _children(1, version="v3", due=later))
    waiting = store.waiting_pending("operations")
    assert waiting.height == 3  # no duplicates: one waiting row per child
    # Seen again, a child gets its latest version; only a failed retry counts an attempt.
    assert waiting["attempts"].to_list() == [0, 0, 0]
    assert waiting["batch_id"].to_list() == [batch2, batch2, batch]
    assert [json.loads(p)["data"]["v"] for p in waiting["payload"]] == ["v3", "v2", "v1"]
    assert waiting["next_retry_at"].to_list() == [NOW, NOW, NOW]


def test_failed_retries_record_attempts_and_spent_children_stop_waiting(
    store: StateStore, batch: int
) -> None:
    children = _children(3, due=NOW)
    store.add_pending("operations", batch, children)
    keys = children.get_column("bk_hash")
    later = NOW + timedelta(minutes=2)
    attempts = pl.DataFrame(
        {"bk_hash": keys.head(2), "attempts": [1, 4], "next_retry_at": [later, later]}
    )
    assert store.record_pending_attempts("operations", attempts) == 2
    waiting = store.waiting_pending("operations")
    assert waiting["attempts"].to_list() == [1, 4, 0]
    assert waiting["next_retry_at"].to_list() == [later, later, NOW]
    assert store.dead_letter_pending("operations", keys.slice(1, 1)) == 1
    assert store.waiting_pending("operations")["bk_hash"].to_list() == [keys[0], keys[2]]
    statuses = store.list_pending("operations", status=None)["status"].to_list()
    assert statuses == ["waiting", "dead_lettered", "waiting"]


def test_default_due_time_is_now_and_structs_become_json(store: StateStore, batch: int) -> None:
    before = datetime.now(UTC)
    frame = pl.DataFrame(
        {
            "bk_hash": ["cd" * 16],
            "payload": [{"data": {"name": "x"}, "data_hash": "ef" * 32}],
            "waiting_for": [[PARENT, {"entity": "items", "bk_hash": "01" * 16}]],
        }
    )
    store.add_pending("operations", batch, frame)
    row = store.waiting_pending("operations").row(0, named=True)
    assert before <= row["next_retry_at"] <= datetime.now(UTC)
    assert row["rowversion"] is None
    assert json.loads(row["payload"]) == {"data": {"name": "x"}, "data_hash": "ef" * 32}
    assert json.loads(row["waiting_for"]) == [PARENT, {"entity": "items", "bk_hash": "01" * 16}]


def test_due_pending_is_bounded_and_ordered(store: StateStore, batch: int) -> None:
    store.add_pending("operations", batch, _children(5, due=NOW - timedelta(seconds=1)))
    store.add_pending("operations", batch, _children(3, offset=100, due=NOW + timedelta(days=1)))
    store.add_pending("routings", batch, _children(2, offset=200, due=NOW))
    first = store.due_pending(NOW, limit=3)
    assert first.height == 3 and first["id"].is_sorted()
    rest = store.due_pending(NOW, limit=10, after_id=first["id"].max())
    assert rest.height == 4 and rest["id"].min() > first["id"].max()
    assert set(rest["entity"]) == {"operations", "routings"}
    assert store.due_pending(NOW, limit=10, after_id=rest["id"].max()).is_empty()


def test_release_and_expire(store: StateStore, batch: int) -> None:
    children = _children(6, due=NOW)
    store.add_pending("operations", batch, children)
    keys = children["bk_hash"]
    unknown = state_rows(2, offset=500)["bk_hash"]
    assert store.release_pending("operations", pl.concat([keys.head(3), unknown])) == 3
    assert store.release_pending("operations", keys.head(3)) == 0  # already released
    assert store.release_pending("routings", keys) == 0  # other entity
    assert store.expire_pending("operations", keys.slice(3, 1)) == 1
    assert store.count_pending("operations") == 2
    assert store.waiting_pending("operations")["bk_hash"].to_list() == keys.slice(4).to_list()
    assert store.due_pending(NOW)["bk_hash"].to_list() == keys.slice(4).to_list()

    # A released child can wait again later: a new waiting row, attempts from 0.
    store.add_pending("operations", batch, children.head(1))
    again = store.waiting_pending("operations").filter(pl.col("bk_hash") == keys[0])
    assert again["attempts"].to_list() == [0]
    assert store.count_pending("operations") == 3


def test_many_keys_and_bad_keys(store: StateStore, batch: int) -> None:
    children = _children(1_200, due=NOW)
    assert store.add_pending("operations", batch, children) == 1_200
    assert store.release_pending("operations", children["bk_hash"]) == 1_200
    with pytest.raises(ValueError, match="bk_hash"):
        store.add_pending("operations", batch, children.head(1).with_columns(bk_hash=pl.lit("x")))
    with pytest.raises(ValueError, match="waiting_for"):
        store.add_pending("operations", batch, children.drop("waiting_for"))


def _history(store: StateStore, child_id: int) -> list[dict[str, str]]:
    row = store.get_pending(child_id)
    assert row is not None
    return json.loads(row["actions"] or "[]")


def test_list_show_drop_and_retry_now(store: StateStore, batch: int) -> None:
    store.add_pending("operations", batch, _children(3, due=NOW + timedelta(hours=1)))
    other = store.start_batch("routings", "run-2", "incremental")
    store.add_pending("routings", other, _children(2, offset=100, due=NOW))
    every = store.list_pending(status=None, limit=None)
    ids = every["id"].to_list()
    assert every.columns == list(PENDING_SCHEMA)
    assert store.list_pending("operations")["id"].to_list() == ids[:3]
    assert store.list_pending(batch_id=other)["id"].to_list() == ids[3:]
    assert store.list_pending(ids=[ids[1], 999])["id"].to_list() == [ids[1]]
    assert store.list_pending(limit=1, after_id=ids[0])["id"].to_list() == [ids[1]]
    assert store.list_pending(since=datetime.now(UTC) + timedelta(minutes=1)).is_empty()
    with pytest.raises(ValueError, match="status"):
        store.list_pending(status="gone")
    shown = store.get_pending(ids[0])
    assert shown is not None and set(shown) == set(PENDING_SCHEMA)
    assert store.get_pending(999_999) is None

    assert store.drop_pending([ids[0], ids[3]], "the order was cancelled") == [ids[0], ids[3]]
    assert store.drop_pending([ids[0]], "again") == []  # only waiting rows
    assert store.count_pending("operations") == 2
    assert store.list_pending(status="dropped")["id"].to_list() == [ids[0], ids[3]]
    assert store.due_pending(NOW)["id"].to_list() == [ids[4]]

    now = datetime.now(UTC)
    assert store.retry_pending_now(ids[:3], "parent fixed", now=now) == ids[1:3]
    assert set(store.due_pending(now)["id"]) == {ids[1], ids[2], ids[4]}
    assert [(a["action"], a["reason"]) for a in _history(store, ids[0])] == [
        ("drop", "the order was cancelled")
    ]
    assert [(a["action"], a["reason"]) for a in _history(store, ids[1])] == [
        ("retry", "parent fixed")
    ]
    # A dropped child can wait again when a later run finds its parent still missing.
    dropped = store.list_pending(ids=[ids[0]], status=None)
    store.add_pending("operations", batch, _children(1, due=NOW))
    assert store.count_pending("operations") == 3
    assert dropped["status"].to_list() == ["dropped"]
