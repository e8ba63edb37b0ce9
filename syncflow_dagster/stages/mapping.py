"""Map stage: normalized source columns become the target entity's fields.

Each target field takes its value from one source column, a concatenation of
columns, or a constant; then its transforms run (trim / upper / lower, a value
map, a default for nulls) and the value is converted to the field's type:

==========  ====================================  =============================
target      polars dtype in the mapped frame       accepted normalized sources
==========  ====================================  =============================
string      String                                 any (numbers, dates as text)
integer     Int64                                  integers; numbers without a
                                                   fraction; integer text
number      Float64                                integers, numbers, numeric text
boolean     Boolean                                flags; Y/N, 1/0, T/F, true/false
date        Date (the day in the ERP time zone)    DATE/TIMESTAMP; YYYY-MM-DD text
datetime    Datetime(us, UTC)                      DATE/TIMESTAMP; ISO 8601 text
==========  ====================================  =============================

A value that cannot be converted, a value a strict value map does not list,
and a null in a field the hub requires each fail the record (``map_failed``);
every other record goes on.
"""

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import polars as pl

from syncflow_dagster.config.models import EntityConfig, FieldConfig, TargetType
from syncflow_dagster.errors import ConfigurationError
from syncflow_dagster.stages.failures import ROW, Check, empty_failures, shown, split_by_checks
from syncflow_dagster.stages.timezones import wall_clock_to_utc

TARGET_DTYPES: dict[TargetType, pl.DataType] = {
    "string": pl.String(),
    "integer": pl.Int64(),
    "number": pl.Float64(),
    "boolean": pl.Boolean(),
    "date": pl.Date(),
    "datetime": pl.Datetime("us", "UTC"),
}

_TRUE = ["Y", "1", "T", "TRUE", "YES"]
_FALSE = ["N", "0", "F", "FALSE", "NO"]


class MappingError(ConfigurationError):
    """A field's configuration cannot apply to the data (not a record's fault)."""


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _as_text(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A normalized value as text, in the forms the hub reads back."""
    if isinstance(dtype, pl.Datetime):
        return expr.dt.to_string("%Y-%m-%dT%H:%M:%S%.6fZ")
    if dtype == pl.Boolean:
        return pl.when(expr).then(pl.lit("true")).when(~expr).then(pl.lit("false"))
    return expr.cast(pl.String)


def _convert(expr: pl.Expr, dtype: pl.DataType, target: TargetType, tz: str) -> pl.Expr:
    """Convert a value of ``dtype`` to the target type; null where it cannot be."""
    is_text = dtype == pl.String
    if target == "string":
        return _as_text(expr, dtype)
    if target == "integer":
        if dtype.is_integer():
            return expr.cast(pl.Int64)
        if dtype.is_float():
            return pl.when(expr == expr.round(0)).then(expr.cast(pl.Int64, strict=False))
        if is_text:
            return expr.str.strip_chars().str.to_integer(strict=False)
    elif target == "number":
        if dtype.is_numeric():
            return expr.cast(pl.Float64)
        if is_text:
            return expr.str.strip_chars().cast(pl.Float64, strict=False)
    elif target == "boolean":
        if dtype == pl.Boolean:
            return expr
        if is_text or dtype.is_integer():
            upper = expr.cast(pl.String).str.strip_chars().str.to_uppercase()
            return pl.when(upper.is_in(_TRUE)).then(True).when(upper.is_in(_FALSE)).then(False)
    elif target == "date":
        if isinstance(dtype, pl.Datetime):
            local = expr.dt.convert_time_zone(tz) if dtype.time_zone else expr
            return local.dt.date()
        if dtype == pl.Date:
            return expr
        if is_text:
            return expr.str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
    elif target == "datetime":
        if isinstance(dtype, pl.Datetime):
            if dtype.time_zone:
                return expr.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
            return wall_clock_to_utc(expr, tz)
        if dtype == pl.Date:
            return wall_clock_to_utc(expr.cast(pl.Datetime("us")), tz)
        if is_text:
            parsed = expr.str.strip_chars().str.to_datetime(time_zone="UTC", strict=False)
            return parsed.dt.cast_time_unit("us")
    raise MappingError(f"cannot convert a {dtype} source to target type {target}")


def _source(f: FieldConfig, schema: pl.Schema) -> tuple[pl.Expr, pl.DataType]:
    if f.from_ is not None:
        return pl.col(f.from_), schema[f.from_]
    if f.concat is not None:
        parts = [_as_text(pl.col(c), schema[c]) for c in f.concat]
        joined = pl.concat_str(parts, separator=f.separator, ignore_nulls=True)
        return pl.when(joined != "").then(joined), pl.String()
    value = f.constant
    if value is None:
        return pl.lit(None, dtype=TARGET_DTYPES[f.type]), TARGET_DTYPES[f.type]
    return pl.lit(value), pl.Series([value]).dtype


def field_plan(
    f: FieldConfig, schema: pl.Schema, tz: str, required: bool
) -> tuple[pl.Expr, list[Check]]:
    """The expression that makes one target field, and the checks it can fail.

    Raises:
        MappingError: when the configuration cannot apply to the source's types.
    """
    try:
        value, dtype = _source(f, schema)
    except KeyError as exc:
        raise MappingError(f"field {f.name}: source column {exc} is not in the records") from None
    if f.transforms or f.value_map is not None:
        if dtype != pl.String and f.transforms:
            raise MappingError(
                f"field {f.name}: transforms {list(f.transforms)} need a text source, got {dtype}"
            )
        value, dtype = _as_text(value, dtype), pl.String()
        for t in f.transforms:
            value = {
                "trim": value.str.strip_chars(),
                "upper": value.str.to_uppercase(),
                "lower": value.str.to_lowercase(),
            }[t]
    checks: list[Check] = []
    if f.value_map is not None:
        keys = list(f.value_map)
        mapped = value.replace_strict(
            keys, [_text(v) for v in f.value_map.values()], default=value, return_dtype=pl.String
        )
        if f.strict_value_map:
            checks.append(
                Check(
                    "unmapped_value",
                    f.name,
                    value.is_not_null() & ~value.is_in(keys),
                    pl.lit(f"{f.name}: value ") + shown(value) + pl.lit(" is not in the value map"),
                )
            )
        value = mapped
    try:
        converted = _convert(value, dtype, f.type, tz)
    except MappingError as exc:
        raise MappingError(f"field {f.name}: {exc}") from None
    checks.append(
        Check(
            "type_conversion",
            f.name,
            value.is_not_null() & converted.is_null(),
            pl.lit(f"{f.name}: ") + shown(value) + pl.lit(f" cannot be read as {f.type}"),
        )
    )
    if f.default is not None:
        converted = converted.fill_null(pl.lit(f.default).cast(TARGET_DTYPES[f.type]))
    if required:
        checks.append(
            Check(
                "required_field_missing",
                f.name,
                converted.is_null(),
                pl.lit(f"{f.name} is required by the hub but has no value"),
            )
        )
    return converted.cast(TARGET_DTYPES[f.type]).alias(f.name), checks


def carried_columns(entity: EntityConfig) -> list[str]:
    """Source columns the mapped frame keeps for identity and parents."""
    cols = [ROW, *entity.source.key]
    if entity.source.rowversion:
        cols.append(entity.source.rowversion)
    for parent in entity.parents:
        cols.extend(parent.columns)
    return list(dict.fromkeys(cols))


@dataclass(frozen=True)
class MapResult:
    """Mapped records, one failure per failed record, and the failed records' mapped form."""

    frame: pl.DataFrame
    failures: pl.DataFrame
    rejected: pl.DataFrame


def map_records(
    frame: pl.DataFrame, entity: EntityConfig, tz: str, required: Collection[str] = ()
) -> MapResult:
    """Make the target fields.

    The mapped frame holds ``_row``, the key, rowversion and parent columns (for
    identity and resolve) and one column per target field, named as the field.
    ``rejected`` holds the same columns for the failed records (null where a
    value could not be converted), for their dead letters.

    Raises:
        MappingError: when a field's configuration cannot apply to the source's types.
    """
    exprs: list[pl.Expr] = []
    checks: list[Check] = []
    for f in entity.target.fields:
        expr, field_checks = field_plan(f, frame.schema, tz, f.name in required)
        exprs.append(expr)
        checks.extend(field_checks)
    flags = [f"_c{i}" for i in range(len(checks))]
    staged = frame.select(
        *[pl.col(c) for c in carried_columns(entity)],
        *exprs,
        *[c.failed.fill_null(False).alias(flag) for c, flag in zip(checks, flags, strict=True)],
    )
    bad = staged.select(pl.any_horizontal(flags).alias("bad")).to_series() if flags else None
    if bad is None or not bad.any():
        out = staged.drop(flags)
        return MapResult(out, empty_failures(), out.clear())
    # Details are built only for the failing rows, from their source values.
    bad_source = frame.filter(bad).hstack(staged.filter(bad).select(flags))
    _, failures = split_by_checks(
        bad_source,
        [
            Check(c.code, c.column, pl.col(flag), c.detail)
            for c, flag in zip(checks, flags, strict=True)
        ],
    )
    return MapResult(staged.filter(~bad).drop(flags), failures, staged.filter(bad).drop(flags))
