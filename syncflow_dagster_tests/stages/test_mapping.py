import datetime as dt

import polars as pl
import pytest

from syncflow_dagster.config.models import EntityConfig
from syncflow_dagster.stages.mapping import MappingError, map_records

UTC = dt.UTC


def _entity(fields: list[dict], parents: list[dict] | None = None) -> EntityConfig:
    return EntityConfig.model_validate(
        {
            "name": "orders",
            "source": {"entity": "orders", "key": ["NO"], "rowversion": "RV"},
            "target": {"entity": "orders", "fields": fields},
        }
    )


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "NO": ["A", "B", "C"],
            "RV": [1, 2, 3],
            "QTY": [1.0, 2.5, None],
            "N": [3, None, 7],
            "FLAG": ["y", "N", "x"],
            "NAME": ["  bolt ", "nut", None],
            "STATUS": ["FIRM", "OPEN", None],
            # 2026-03-29 23:30 UTC is already 30 March in Berlin
            "WHEN": [
                dt.datetime(2026, 3, 29, 23, 30, tzinfo=UTC),
                None,
                dt.datetime(2026, 1, 1, tzinfo=UTC),
            ],
            "TXT": ["12", "x", "7"],
        },
        schema_overrides={"RV": pl.Int64, "N": pl.Int64},
    ).with_row_index("_row")


def test_types_transforms_value_map_default_and_constant() -> None:
    entity = _entity(
        [
            {"name": "no", "from": "NO", "type": "string"},
            {"name": "qty", "from": "QTY", "type": "number", "default": 0},
            {"name": "n", "from": "N", "type": "integer"},
            {"name": "name", "from": "NAME", "type": "string", "transforms": ["trim", "upper"]},
            {
                "name": "status",
                "from": "STATUS",
                "type": "string",
                "value_map": {"FIRM": "FIRM_PLANNED"},
            },
            {"name": "day", "from": "WHEN", "type": "date"},
            {"name": "at", "from": "WHEN", "type": "datetime"},
            {"name": "label", "concat": ["NO", "NAME"], "separator": "/", "type": "string"},
            {"name": "source", "constant": "ERP", "type": "string"},
        ]
    )
    result = map_records(_frame(), entity, "Europe/Berlin")
    assert result.failures.height == 0
    out = result.frame
    assert out.schema["qty"] == pl.Float64 and out.schema["n"] == pl.Int64
    assert out.schema["day"] == pl.Date and out.schema["at"] == pl.Datetime("us", "UTC")
    rows = out.select("no", "qty", "n", "name", "status", "day", "label", "source").rows()
    assert rows[0] == (
        "A",
        1.0,
        3,
        "BOLT",
        "FIRM_PLANNED",
        dt.date(2026, 3, 30),
        "A/  bolt ",
        "ERP",
    )
    assert rows[2][1] == 0.0  # default fills the null
    assert rows[1][4] == "OPEN"  # not in the map: passes through
    assert rows[2][6] == "C"  # concat skips nulls
    # Carried columns for identity and parents
    assert {"_row", "NO", "RV"} <= set(out.columns)


def test_conversion_failures_and_required_fields() -> None:
    entity = _entity(
        [
            {"name": "no", "from": "NO", "type": "string"},
            {"name": "flag", "from": "FLAG", "type": "boolean"},
            {"name": "num", "from": "TXT", "type": "integer"},
            {"name": "name", "from": "NAME", "type": "string"},
            {
                "name": "status",
                "from": "STATUS",
                "type": "string",
                "value_map": {"FIRM": "F"},
                "strict_value_map": True,
            },
        ]
    )
    result = map_records(_frame(), entity, "Europe/Berlin", required={"name"})
    assert result.frame.get_column("no").to_list() == ["A"]
    assert result.frame.row(0)[-5:] == ("A", True, 12, "  bolt ", "F")
    codes = dict(
        zip(
            result.failures.get_column("_row").to_list(),
            result.failures.get_column("code").to_list(),
            strict=True,
        )
    )
    assert codes == {1: "type_conversion", 2: "type_conversion"}
    detail_b = result.failures.filter(pl.col("_row") == 1).item(0, "detail")
    assert "num: 'x' cannot be read as integer" in detail_b
    assert "not in the value map" in detail_b
    detail_c = result.failures.filter(pl.col("_row") == 2).item(0, "detail")
    assert "flag: 'x' cannot be read as boolean" in detail_c
    assert "name is required by the hub" in detail_c
    # The failed records' mapped form is kept for their dead letters.
    assert result.rejected.height == 2
    assert result.rejected.filter(pl.col("_row") == 1).item(0, "flag") is False


def test_integer_from_fractional_number_fails() -> None:
    entity = _entity([{"name": "q", "from": "QTY", "type": "integer"}])
    result = map_records(_frame(), entity, "UTC")
    assert result.frame.get_column("q").to_list() == [1, None]
    assert result.failures.get_column("code").to_list() == ["type_conversion"]


def test_transform_on_non_text_is_a_configuration_error() -> None:
    entity = _entity([{"name": "q", "from": "QTY", "type": "number", "transforms": ["upper"]}])
    with pytest.raises(MappingError, match="field q: transforms"):
        map_records(_frame(), entity, "UTC")
