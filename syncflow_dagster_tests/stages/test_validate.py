import datetime as dt

import polars as pl
import pytest

from syncflow_dagster.config.models import EntityConfig
from syncflow_dagster.stages.validate import validate


def _entity(**extra: object) -> EntityConfig:
    return EntityConfig.model_validate(
        {
            "name": "orders",
            "source": {"entity": "orders", "key": ["NO"], "rowversion": "RV"},
            "target": {
                "entity": "orders",
                "fields": [{"name": "no", "from": "NO", "type": "string"}],
            },
            **extra,
        }
    )


def _frame(**cols: list) -> pl.DataFrame:
    n = len(next(iter(cols.values())))
    return (
        pl.DataFrame(cols)
        .with_row_index("_row")
        .with_columns(pl.Series("RV", list(range(1, n + 1)), dtype=pl.Int64))
    )


def test_rules_fail_records_with_code_and_detail() -> None:
    entity = _entity(
        rules=[
            {"column": "QTY", "required": True, "min": 0, "max": 100},
            {"column": "STATUS", "allowed": ["OPEN", "DONE"]},
            {"column": "NO", "regex": "^WO-\\d+$", "max_length": 8},
            {"column": "DUE", "not_before": "START"},
        ]
    )
    d = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)
    frame = _frame(
        NO=["WO-1", "WO-2", "WO-3", "XX-4", "WO-5", "WO-123456"],
        QTY=[5.0, None, -1.0, 5.0, 500.0, 1.0],
        STATUS=["OPEN", "OPEN", "OPEN", "LOST", "DONE", "OPEN"],
        START=[d, d, d, d, d, d],
        DUE=[d, d, d, d, d - dt.timedelta(days=1), d],
    )
    good, failures = validate(frame, entity)
    assert good.get_column("NO").to_list() == ["WO-1"]
    by_no = dict(
        zip(
            failures.get_column("_row").to_list(),
            failures.get_column("code").to_list(),
            strict=True,
        )
    )
    assert by_no == {1: "required", 2: "below_min", 3: "not_allowed", 4: "above_max", 5: "too_long"}
    detail = failures.filter(pl.col("_row") == 3).item(0, "detail")
    assert "STATUS 'LOST' is not one of: OPEN, DONE" in detail
    assert "does not match" in detail  # every broken rule is named, not only the first
    assert "DUE" in failures.filter(pl.col("_row") == 4).item(0, "detail")
    assert good.height + failures.height == frame.height


def test_empty_key_and_duplicate_keys() -> None:
    frame = _frame(NO=["A", None, "B", "A", "A"])
    good, failures = validate(frame, _entity())
    # The row of A with the highest rowversion (row 4) wins; rows 0 and 3 are duplicates.
    assert sorted(good.get_column("_row").to_list()) == [2, 4]
    codes = dict(
        zip(
            failures.get_column("_row").to_list(),
            failures.get_column("code").to_list(),
            strict=True,
        )
    )
    assert codes == {0: "duplicate_key", 1: "key_missing", 3: "duplicate_key"}
    assert "occurs more than once" in failures.filter(pl.col("_row") == 0).item(0, "detail")


def test_duplicate_winner_by_rowversion_not_position() -> None:
    frame = _frame(NO=["A", "A"]).with_columns(pl.Series("RV", [9, 3], dtype=pl.Int64))
    good, failures = validate(frame, _entity())
    assert good.get_column("_row").to_list() == [0]
    assert failures.get_column("_row").to_list() == [1]


def test_keys_whose_hashes_collide_are_still_told_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """Repeats are looked for among key hashes; a collision (no real data makes one
    on demand, so every key is given the same hash here) must not fail a unique key."""
    monkeypatch.setattr(pl.Expr, "hash", lambda self, *a, **k: self.is_null().cast(pl.UInt64))
    frame = _frame(NO=["A", "B", "A", "C", None])
    good, failures = validate(frame, _entity())
    assert sorted(good.get_column("_row").to_list()) == [1, 2, 3]
    codes = dict(zip(failures["_row"].to_list(), failures["code"].to_list(), strict=True))
    assert codes == {0: "duplicate_key", 4: "key_missing"}


def test_no_rules_no_failures() -> None:
    frame = _frame(NO=["A", "B"])
    good, failures = validate(frame, _entity())
    assert good.height == 2 and failures.height == 0
    assert good.columns == frame.columns


def test_a_record_without_a_rowversion_can_never_be_settled() -> None:
    frame = _frame(NO=["A", "B", "C"]).with_columns(pl.Series("RV", [5, None, 7], dtype=pl.Int64))
    good, failures = validate(frame, _entity())
    assert good.get_column("_row").to_list() == [0, 2]
    [failure] = failures.to_dicts()
    assert failure["_row"] == 1 and failure["code"] == "rowversion_missing"
    assert failure["column"] == "RV" and "RV is empty" in failure["detail"]


def test_an_entity_without_a_rowversion_needs_none() -> None:
    entity = EntityConfig.model_validate(
        {
            "name": "orders",
            "source": {"entity": "orders", "key": ["NO"]},
            "target": {
                "entity": "orders",
                "fields": [{"name": "no", "from": "NO", "type": "string"}],
            },
        }
    )
    frame = _frame(NO=["A", "B"]).with_columns(pl.lit(None, dtype=pl.Int64).alias("RV"))
    good, failures = validate(frame, entity)
    assert good.height == 2 and failures.height == 0
