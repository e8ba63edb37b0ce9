import orjson
import polars as pl

from syncflow_dagster.stages.encode import LINE, upsert_line
from syncflow_dagster.stages.resolve import (
    RELEASED,
    WAVE,
    named_parents_json,
    parents_to_look_up,
    resolve,
)

PARENTS = ["items", "centers"]
ENCODE = upsert_line(["name"], [("items", "_parent_items"), ("centers", "_parent_centers")])


def _upserts() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "bk_hash": ["c1", "c2", "c3"],
            "data_hash": ["h1", "h2", "h3"],
            "rowversion": [1, 2, 3],
            "_row": [0, 1, 2],
            "_parent_items": ["i1", "i2", None],
            "_parent_centers": ["w1", "w1", "w9"],
            "name": ["one", "two", "three"],
            "_op": ["insert", "update", "insert"],
        },
        schema_overrides={"_row": pl.UInt32},
    )


def _waiting() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "bk_hash": ["old1", "old2", "c1"],
            "rowversion": [0, 0, 0],
            "payload": [
                '{"op":"upsert","data_hash":"p1"}',
                '{"op":"upsert","data_hash":"p2"}',
                '{"op":"upsert","data_hash":"px"}',
            ],
            "waiting_for": [
                '[{"entity":"items","bk_hash":"i2"}]',
                '[{"entity":"items","bk_hash":"i7"}]',
                '[{"entity":"items","bk_hash":"i1"}]',
            ],
        }
    )


def test_lookups_cover_new_and_waiting_children() -> None:
    needed = parents_to_look_up(_upserts(), _waiting(), PARENTS)
    assert sorted(needed["items"].to_list()) == ["i1", "i2", "i7"]
    assert sorted(needed["centers"].to_list()) == ["w1", "w9"]


def test_missing_parents_wait_and_present_ones_release() -> None:
    present = {"items": pl.Series(["i1", "i2"]), "centers": pl.Series(["w1"])}
    deletes = pl.DataFrame({"bk_hash": ["gone"], "rowversion": [5]})
    plan = resolve(
        _upserts(), deletes, _waiting(), pl.Series(["c1", "c2", "c3"]), PARENTS, present, ENCODE
    )
    send = plan.send
    assert send.filter(pl.col(WAVE) == 0)["bk_hash"].to_list() == ["gone"]
    sent = send.filter((pl.col(WAVE) == 1) & ~pl.col(RELEASED) & ~pl.col("_blocked"))
    assert sorted(sent["bk_hash"].to_list()) == ["c1", "c2"]
    # The waiting child stays in the plan, flagged, so the wide frame is not copied.
    assert send.filter(pl.col("_blocked"))["bk_hash"].to_list() == ["c3"]
    released = send.filter(pl.col(RELEASED))
    assert released["bk_hash"].to_list() == ["old1"]  # its parent i2 is present now
    assert released["data_hash"].to_list() == ["p1"]
    assert plan.released == 1
    # c3 names centre w9, which the hub does not have: it waits, for that parent only.
    assert plan.pending["bk_hash"].to_list() == ["c3"]
    assert orjson.loads(plan.pending["waiting_for"][0]) == [{"entity": "centers", "bk_hash": "w9"}]
    payload = orjson.loads(plan.pending["payload"][0])
    assert payload["external_id"] == "c3" and payload["data"] == {"name": "three"}
    assert payload["parents"] == [{"entity": "centers", "external_id": "w9"}]
    # Fresh upserts go out as fields, encoded when their batch is sent.
    ready = send.filter(pl.col("bk_hash") == "c2")
    assert ready[LINE][0] is None and ready["name"][0] == "two"
    assert send.filter(pl.col("bk_hash") == "c1")["_new"][0] is True and ready["_new"][0] is False
    # The waiting copy of c1 is superseded by the fresh record fetched in this run.
    assert plan.superseded.to_list() == ["c1"]
    # A ready upsert keeps its parents' hashes, should the hub still refuse it.
    c1 = send.filter(pl.col("bk_hash") == "c1")
    assert c1["waiting_for"][0] is None
    assert orjson.loads(c1.select(named_parents_json(PARENTS)).item()) == [
        {"entity": "items", "bk_hash": "i1"},
        {"entity": "centers", "bk_hash": "w1"},
    ]


def test_entity_without_parents_sends_everything() -> None:
    upserts = _upserts().drop("_parent_items", "_parent_centers")
    empty_waiting = _waiting().clear()
    empty_deletes = pl.DataFrame(schema={"bk_hash": pl.String, "rowversion": pl.Int64})
    plan = resolve(
        upserts,
        empty_deletes,
        empty_waiting,
        pl.Series([], dtype=pl.String),
        [],
        {},
        upsert_line(["name"], []),
    )
    assert plan.send.height == 3 and plan.pending.height == 0 and plan.released == 0


def test_waiting_delete_is_retried_first() -> None:
    waiting = pl.DataFrame(
        {
            "bk_hash": ["p1"],
            "rowversion": [4],
            "payload": ['{"external_id":"p1","op":"delete"}'],
            "waiting_for": ["[]"],
        }
    )
    empty = _upserts().clear()
    no_deletes = pl.DataFrame(schema={"bk_hash": pl.String, "rowversion": pl.Int64})
    plan = resolve(
        empty,
        no_deletes,
        waiting,
        pl.Series([], dtype=pl.String),
        PARENTS,
        {"items": pl.Series([], dtype=pl.String), "centers": pl.Series([], dtype=pl.String)},
        ENCODE,
    )
    row = plan.send.row(0, named=True)
    assert (row["bk_hash"], row["_op"], row[WAVE], row[RELEASED]) == ("p1", "delete", 0, True)


def test_send_plan_is_ordered_by_wave_with_released_children_in_their_wave() -> None:
    waiting = pl.DataFrame(
        {
            "bk_hash": ["wd", "wu"],
            "rowversion": [1, 2],
            "payload": ['{"external_id":"wd","op":"delete"}', '{"op":"upsert","data_hash":"h"}'],
            "waiting_for": ["[]", "[]"],
        }
    )
    deletes = pl.DataFrame({"bk_hash": ["gone"], "rowversion": [5]})
    present = {"items": pl.Series(["i1", "i2"]), "centers": pl.Series(["w1", "w9"])}
    plan = resolve(
        _upserts(), deletes, waiting, pl.Series([], dtype=pl.String), PARENTS, present, ENCODE
    )
    assert plan.send[WAVE].to_list() == [0, 0, 1, 1, 1, 1]
    assert plan.send["bk_hash"].to_list()[:2] == ["gone", "wd"]
    assert plan.send["bk_hash"].to_list()[-1] == "wu"
