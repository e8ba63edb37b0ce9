import datetime as dt

import orjson
import polars as pl

from syncflow_dagster.stages.encode import LINE, delete_line, upsert_line


def test_upsert_and_delete_lines_are_ingest_records() -> None:
    frame = pl.DataFrame(
        {
            "bk_hash": ["a" * 32, "b" * 32],
            "data_hash": ["c" * 64, "d" * 64],
            "name": ['say "hi"\n', None],
            "qty": [1.5, 2.0],
            "n": [3, None],
            "ok": [True, False],
            "day": [dt.date(2026, 11, 26), None],
            "at": [dt.datetime(2026, 11, 26, 13, 3, 0, 123456, tzinfo=dt.UTC), None],
            "_parent_items": ["e" * 32, None],
        }
    )
    lines = frame.select(
        upsert_line(["name", "qty", "n", "ok", "day", "at"], [("items", "_parent_items")])
    )
    first, second = (orjson.loads(x) for x in lines[LINE])
    assert first == {
        "external_id": "a" * 32,
        "op": "upsert",
        "data": {
            "name": 'say "hi"\n',
            "qty": 1.5,
            "n": 3,
            "ok": True,
            "day": "2026-11-26",
            "at": "2026-11-26T13:03:00.123456+00:00",
        },
        "data_hash": "c" * 64,
        "parents": [{"entity": "items", "external_id": "e" * 32}],
    }
    assert (
        second["parents"] == [] and second["data"]["name"] is None and second["data"]["n"] is None
    )
    deleted = frame.select(delete_line())[LINE].to_list()
    assert orjson.loads(deleted[1]) == {"external_id": "b" * 32, "op": "delete"}
