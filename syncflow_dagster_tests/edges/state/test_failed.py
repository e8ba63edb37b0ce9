import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.edges.state.failed import FAILED_SCHEMA

from .conftest import state_rows

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def _failures(n: int, due: datetime | None = None) -> pl.DataFrame:
    keys = state_rows(n)["bk_hash"]
    return pl.DataFrame(
        {
            "bk_hash": keys,
            "source_key": [json.dumps({"ITEM_NO": f"A-{i}"}) for i in range(n)],
            "rowversion": list(range(n)),
            "stage": ["validate"] * n,
            "code": ["required_missing"] * n,
            "detail": [f"field DESCRIPTION missing on record {i}" for i in range(n)],
            "raw": [json.dumps({"ITEM_NO": f"A-{i}", "DESC": None}) for i in range(n)],
            "normalized": [json.dumps({"item_no": f"A-{i}"}) for i in range(n)],
            "mapped": [None] * n,
            "next_retry_at": [due] * n,
        },
        schema_overrides={"next_retry_at": pl.Datetime("us", "UTC")},
    )


def test_add_and_list_keeps_every_field(store: StateStore, batch: int) -> None:
    tricky = json.dumps({"text": 'comma, "quotes", back\\slash\nnew line\ttab', "n": 1.50})
    frame = pl.DataFrame(
        {
            "bk_hash": [None, "ab" * 16],
            "source_key": ['{"ITEM_NO": null}', '{"ITEM_NO": "X"}'],
            "rowversion": [None, 7],
            "stage": ["identity", "ingest"],
            "code": ["key_unreadable", "hub_rejected"],
            "detail": ["", None],  # empty string and null stay distinct
            "raw": [tricky, "{}"],
            "normalized": [None, "{}"],
            "mapped": [None, '{"name": "Ä ö ✓"}'],
        }
    )
    assert store.add_failed(batch, "items", frame) == 2
    got = store.list_failed("items")
    assert got.height == 2
    assert got["id"].is_sorted()
    expected_cols = ["bk_hash", "source_key", "rowversion", "stage", "code", "detail", "raw"]
    assert got.select(expected_cols).rows() == frame.select(expected_cols).rows()
    assert got["mapped"].to_list() == [None, '{"name": "Ä ö ✓"}']
    assert got["status"].to_list() == ["open", "open"]
    assert got["attempts"].to_list() == [0, 0]
    assert got["batch_id"].to_list() == [batch, batch]
    assert got["next_retry_at"].null_count() == 2
    assert got.schema["created_at"] == pl.Datetime("us", "UTC")
    assert got["created_at"].null_count() == 0
    assert store.count_failed("items") == 2
    assert store.list_failed("work_orders").is_empty()


def test_required_columns_and_key_format(store: StateStore, batch: int) -> None:
    with pytest.raises(ValueError, match="code"):
        store.add_failed(batch, "items", pl.DataFrame({"stage": ["map"]}))
    with pytest.raises(ValueError, match="bk_hash"):
        store.add_failed(
            batch, "items", pl.DataFrame({"bk_hash": ["AB" * 16], "stage": ["x"], "code": ["y"]})
        )
    minimal = pl.DataFrame({"stage": ["map"], "code": ["unknown_enum"]})
    assert store.add_failed(batch, "items", minimal) == 1
    assert store.list_failed()["bk_hash"].to_list() == [None]


def test_structs_are_stored_as_json(store: StateStore, batch: int) -> None:
    frame = pl.DataFrame({"stage": ["map"], "code": ["x"], "raw": [{"a": 1, "b": "two"}]})
    store.add_failed(batch, "items", frame)
    assert json.loads(store.list_failed()["raw"][0]) == {"a": 1, "b": "two"}


def test_due_failed_is_bounded_and_ordered(store: StateStore, batch: int) -> None:
    store.add_failed(batch, "items", _failures(5, due=NOW - timedelta(minutes=1)))
    store.add_failed(batch, "items", _failures(2, due=NOW + timedelta(hours=1)))  # not yet
    store.add_failed(batch, "items", _failures(2, due=None))  # manual only
    store.add_failed(batch, "work_orders", _failures(3, due=NOW))  # exactly now: due

    first = store.due_failed(NOW, limit=4)
    assert first.height == 4
    assert first["id"].is_sorted() and first["id"].n_unique() == 4
    rest = store.due_failed(NOW, limit=4, after_id=first["id"].max())
    assert rest.height == 4
    assert rest["id"].min() > first["id"].max()
    assert store.due_failed(NOW, limit=4, after_id=rest["id"].max()).is_empty()
    assert set(pl.concat([first, rest])["entity"]) == {"items", "work_orders"}
    assert store.due_failed(NOW + timedelta(hours=2), limit=100).height == 10


def test_mark_and_bump(store: StateStore, batch: int) -> None:
    store.add_failed(batch, "items", _failures(4, due=NOW))
    ids = store.list_failed("items")["id"].to_list()

    assert store.mark_failed(ids[:2], "retrying") == 2
    assert store.due_failed(NOW)["id"].to_list() == ids[2:]  # in flight: not due again

    later = NOW + timedelta(minutes=10)
    assert store.bump_failed_attempt(ids[:2], later) == 2
    bumped = store.list_failed("items").filter(pl.col("id").is_in(ids[:2]))
    assert bumped["attempts"].to_list() == [1, 1]
    assert bumped["status"].to_list() == ["open", "open"]
    assert bumped["next_retry_at"].to_list() == [later, later]
    store.bump_failed_attempt(ids[:1], later)
    assert store.list_failed("items")["attempts"].to_list()[:2] == [2, 1]

    assert store.mark_failed([ids[0]], "resolved", "fixed in ERP") == 1
    assert store.mark_failed([ids[1]], "abandoned", "obsolete item") == 1
    closed = store.list_failed("items", status=None).filter(pl.col("id").is_in(ids[:2]))
    assert closed["status"].to_list() == ["resolved", "abandoned"]
    assert closed["resolution"].to_list() == ["fixed in ERP", "obsolete item"]
    assert closed["resolved_at"].null_count() == 0
    assert store.count_failed("items") == 2
    assert store.count_failed("items", status="resolved") == 1
    assert store.count_failed(status=None) == 4
    with pytest.raises(ValueError, match="status"):
        store.mark_failed(ids, "gone")
    assert store.mark_failed([], "resolved") == 0


def test_retry_times_must_be_aware(store: StateStore, batch: int) -> None:
    naive = pl.DataFrame({"stage": ["x"], "code": ["y"], "next_retry_at": [datetime(2024, 1, 1)]})
    with pytest.raises(ValueError, match="aware"):
        store.add_failed(batch, "items", naive)
    berlin = _failures(1, due=None).with_columns(
        next_retry_at=pl.lit(datetime(2024, 1, 1, 13, 0, tzinfo=UTC)).dt.convert_time_zone(
            "Europe/Berlin"
        )
    )
    store.add_failed(batch, "items", berlin)
    assert store.list_failed()["next_retry_at"].to_list() == [
        datetime(2024, 1, 1, 13, 0, tzinfo=UTC)
    ]


def _history(store: StateStore, letter_id: int) -> list[dict[str, str]]:
    row = store.get_failed(letter_id)
    assert row is not None
    return json.loads(row["actions"] or "[]")


def test_list_filters_and_show_every_column(store: StateStore, batch: int) -> None:
    store.add_failed(batch, "items", _failures(3, due=NOW))
    other = store.start_batch("work_orders", "run-2", "incremental")
    transient = _failures(2).with_columns(
        stage=pl.lit("ingest"), code=pl.lit("hub_unavailable"), error_kind=pl.lit("transient")
    )
    store.add_failed(other, "work_orders", transient)
    every = store.list_failed(status=None, limit=None)
    ids = every["id"].to_list()
    assert every.columns == list(FAILED_SCHEMA)

    assert store.list_failed("items")["id"].to_list() == ids[:3]
    assert store.list_failed(stage="ingest")["id"].to_list() == ids[3:]
    assert store.list_failed(code="required_missing", entity="work_orders").is_empty()
    assert store.list_failed(kind="transient")["id"].to_list() == ids[3:]
    assert store.list_failed(batch_id=other)["id"].to_list() == ids[3:]
    assert store.list_failed(ids=[ids[4], ids[0], 999])["id"].to_list() == [ids[0], ids[4]]
    assert store.list_failed(limit=2, after_id=ids[1])["id"].to_list() == ids[2:4]
    assert store.list_failed(since=datetime.now(UTC) + timedelta(minutes=5)).is_empty()
    assert store.list_failed(since=datetime.now(UTC) - timedelta(minutes=5)).height == 5
    assert store.list_failed(status=["open", "resolved"]).height == 5
    with pytest.raises(ValueError, match="kind"):
        store.list_failed(kind="flaky")
    with pytest.raises(ValueError, match="status"):
        store.list_failed(status="closed")

    shown = store.get_failed(ids[3])
    assert shown is not None and set(shown) == set(FAILED_SCHEMA)
    assert (shown["entity"], shown["stage"], shown["error_kind"]) == (
        "work_orders",
        "ingest",
        "transient",
    )
    assert shown["raw"] == transient["raw"][0] and shown["actions"] is None
    assert store.get_failed(999_999) is None


def test_due_failed_by_kind(store: StateStore, batch: int) -> None:
    store.add_failed(
        batch, "items", _failures(2, due=NOW).with_columns(error_kind=pl.lit("transient"))
    )
    store.add_failed(
        batch, "items", _failures(2, due=NOW).with_columns(error_kind=pl.lit("permanent"))
    )
    store.add_failed(batch, "items", _failures(1, due=NOW))  # kind unknown
    assert store.due_failed(NOW).height == 5
    transient = store.due_failed(NOW, kind="transient")
    assert transient.height == 2 and set(transient["error_kind"]) == {"transient"}
    assert store.due_failed(NOW, kind="permanent", limit=1).height == 1
    assert store.due_failed(NOW, kind="configuration").is_empty()
    with pytest.raises(ValueError, match="error_kind"):
        store.add_failed(batch, "items", _failures(1).with_columns(error_kind=pl.lit("flaky")))


def test_actions_resolve_discard_retry_and_bump_are_recorded(store: StateStore, batch: int) -> None:
    store.add_failed(batch, "items", _failures(5, due=NOW))
    ids = store.list_failed("items")["id"].to_list()

    assert store.mark_failed_retrying(ids[:2], "ERP fixed") == ids[:2]
    assert store.list_failed(status="retrying")["id"].to_list() == ids[:2]
    assert store.resolve_failed([ids[0], ids[2]], "fixed the UOM in the ERP") == [ids[0], ids[2]]
    assert store.discard_failed([ids[1], ids[3]], "test item, never needed") == [ids[1], ids[3]]
    assert store.resolve_failed(ids[:4], "again") == []  # closed letters stay as they were
    later = NOW + timedelta(minutes=3)
    assert store.bump_failed_attempt([ids[4]], later, "hub down") == 1
    assert store.hold_failed([ids[4]], "a person looks at it") == [ids[4]]

    rows = {r["id"]: r for r in store.list_failed(status=None).iter_rows(named=True)}
    assert [rows[i]["status"] for i in ids] == [
        "resolved",
        "discarded",
        "resolved",
        "discarded",
        "open",
    ]
    assert rows[ids[0]]["resolution"] == "fixed the UOM in the ERP"
    assert rows[ids[1]]["resolution"] == "test item, never needed"
    assert all(rows[i]["resolved_at"] is not None for i in ids[:4])
    assert (rows[ids[4]]["attempts"], rows[ids[4]]["next_retry_at"]) == (1, None)

    assert [(a["action"], a["reason"]) for a in _history(store, ids[0])] == [
        ("retry", "ERP fixed"),
        ("resolve", "fixed the UOM in the ERP"),
    ]
    assert [a["action"] for a in _history(store, ids[1])] == ["retry", "discard"]
    assert [a["action"] for a in _history(store, ids[2])] == ["resolve"]
    assert [(a["action"], a["reason"]) for a in _history(store, ids[4])] == [
        ("retry_failed", "hub down"),
        ("hold", "a person looks at it"),
    ]
    for entry in _history(store, ids[0]):
        assert set(entry) == {"at", "action", "reason"}
        assert datetime.fromisoformat(entry["at"]) <= datetime.now(UTC)

    # The older API records what it does too (track closes superseded letters with it).
    assert (
        store.mark_failed([ids[4]], "resolved", "superseded: dead-lettered again by batch 9") == 1
    )
    assert _history(store, ids[4])[-1]["action"] == "resolved"
    assert store.resolve_failed([], "nothing") == []


def test_actions_append_to_history_a_new_letter_carries(store: StateStore, batch: int) -> None:
    carried = json.dumps([{"at": "2024-01-01T00:00:00Z", "action": "retry", "reason": "x"}])
    frame = _failures(1).with_columns(attempts=pl.lit(3), actions=pl.lit(carried))
    store.add_failed(batch, "items", frame)
    [row] = store.list_failed("items").iter_rows(named=True)
    assert row["attempts"] == 3
    store.discard_failed([row["id"]], "enough")
    assert [a["action"] for a in _history(store, row["id"])] == ["retry", "discard"]
