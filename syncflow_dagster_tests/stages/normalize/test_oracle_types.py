import polars as pl
import pytest

from syncflow_dagster.stages.normalize import ColumnSpec, OracleKind, OracleType, parse_oracle_type


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NUMBER", OracleType(OracleKind.NUMBER)),
        ("NUMBER(12)", OracleType(OracleKind.NUMBER, precision=12, scale=0)),
        ("NUMBER(12,3)", OracleType(OracleKind.NUMBER, precision=12, scale=3)),
        ("number ( 12 , 3 )", OracleType(OracleKind.NUMBER, precision=12, scale=3)),
        ("NUMBER(*,0)", OracleType(OracleKind.NUMBER, precision=38, scale=0)),
        ("NUMBER(5,-2)", OracleType(OracleKind.NUMBER, precision=5, scale=-2)),
        ("INTEGER", OracleType(OracleKind.INTEGER, precision=38, scale=0)),
        ("DATE", OracleType(OracleKind.DATE)),
        ("TIMESTAMP", OracleType(OracleKind.TIMESTAMP)),
        ("TIMESTAMP(6)", OracleType(OracleKind.TIMESTAMP, fractional_seconds=6)),
        ("TIMESTAMP WITH TIME ZONE", OracleType(OracleKind.TIMESTAMP_TZ)),
        (
            "timestamp(3)  with time zone",
            OracleType(OracleKind.TIMESTAMP_TZ, fractional_seconds=3),
        ),
        ("CHAR(8)", OracleType(OracleKind.CHAR, length=8)),
        ("CHAR", OracleType(OracleKind.CHAR, length=1)),
        ("CHAR(8 BYTE)", OracleType(OracleKind.CHAR, length=8, length_semantics="BYTE")),
        ("VARCHAR2(20)", OracleType(OracleKind.VARCHAR2, length=20)),
        (
            "VARCHAR2(20 CHAR)",
            OracleType(OracleKind.VARCHAR2, length=20, length_semantics="CHAR"),
        ),
        ("FLAG", OracleType(OracleKind.FLAG, length=1)),
    ],
)
def test_parse_oracle_type(text: str, expected: OracleType) -> None:
    assert parse_oracle_type(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "CLOB",
        "NUMBER(0)",
        "NUMBER(39,2)",
        "NUMBER(12,3",
        "VARCHAR2",
        "VARCHAR2(0)",
        "TIMESTAMP WITH LOCAL TIME ZONE",
        "TIMESTAMP(10)",
        "",
    ],
)
def test_unknown_or_malformed_type_raises_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match=repr(text).replace("(", r"\(").replace(")", r"\)")):
        parse_oracle_type(text)


@pytest.mark.parametrize(
    ("text", "dtype"),
    [
        ("NUMBER(12,3)", pl.Float64()),
        ("NUMBER", pl.Float64()),
        ("NUMBER(3,0)", pl.Int64()),
        ("NUMBER(18)", pl.Int64()),
        ("NUMBER(19,0)", pl.Int64()),
        ("INTEGER", pl.Int64()),
        ("DATE", pl.Datetime("us", "UTC")),
        ("TIMESTAMP", pl.Datetime("us", "UTC")),
        ("TIMESTAMP WITH TIME ZONE", pl.Datetime("us", "UTC")),
        ("CHAR(8)", pl.String()),
        ("VARCHAR2(20)", pl.String()),
        ("FLAG", pl.Boolean()),
    ],
)
def test_polars_dtype(text: str, dtype: pl.DataType) -> None:
    assert parse_oracle_type(text).polars_dtype == dtype


@pytest.mark.parametrize(
    "text", ["NUMBER", "NUMBER(12,3)", "CHAR(8 BYTE)", "TIMESTAMP(6) WITH TIME ZONE", "DATE"]
)
def test_str_round_trips(text: str) -> None:
    parsed = parse_oracle_type(text)
    assert parse_oracle_type(str(parsed)) == parsed


def test_column_spec_accepts_type_text() -> None:
    spec = ColumnSpec("QTY", "NUMBER(12,3)")
    assert spec.oracle_type == parse_oracle_type("NUMBER(12,3)")
    assert spec.polars_dtype == pl.Float64()
    assert not spec.is_flag


def test_column_spec_flag_makes_a_char_column_boolean() -> None:
    spec = ColumnSpec("ACTIVE", "CHAR(1)", flag=True)
    assert spec.is_flag
    assert spec.polars_dtype == pl.Boolean()
    assert ColumnSpec("ACTIVE", "FLAG").is_flag


def test_column_spec_flag_on_a_number_is_refused() -> None:
    with pytest.raises(ValueError, match="QTY"):
        ColumnSpec("QTY", "NUMBER(12,3)", flag=True)


def test_column_spec_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError, match="BLOB"):
        ColumnSpec("DOC", "BLOB")
