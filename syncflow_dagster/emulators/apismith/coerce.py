"""Explicit true values (from Python or JSON) into an entity's typed ground-truth frame."""

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

import polars as pl

from syncflow_dagster.emulators.apismith.schema import Column, Entity

_TRUE = {"y", "1", "t", "true", "yes"}
_FALSE = {"n", "0", "f", "false", "no"}


class MutationError(ValueError):
    """An explicit mutation the ERP would refuse (bad value, existing key ...); says why."""


def _datetime(value: object) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    raise TypeError(f"not a date/time: {value!r}")


def coerce_value(col: Column, value: object) -> object:
    """One value as the column's ground-truth type (``None`` stays ``None``)."""
    if value is None:
        return None
    kind = col.kind
    if kind in ("varchar", "char"):
        if not isinstance(value, str):
            raise TypeError(f"not a string: {value!r}")
        return value
    if kind == "flag":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise TypeError(f"not a flag: {value!r}")
    if kind == "number":
        if isinstance(value, bool):
            raise TypeError(f"not a number: {value!r}")
        number = Decimal(str(value))
        if col.scale == 0:
            if number != number.to_integral_value():
                raise TypeError(f"not an integer: {value!r}")
            return int(number)
        return number.quantize(Decimal(1).scaleb(-col.scale))
    moment = _datetime(value)
    if kind == "date":
        return moment.replace(tzinfo=None)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def coerce_rows(entity: Entity, rows: Sequence[Mapping[str, object]]) -> pl.DataFrame:
    """The given columns of ``rows`` as a typed frame (columns not given are absent)."""
    names = [c.name for c in entity.columns]
    given: list[str] = []
    for row in rows:
        for name in row:
            if name not in names:
                raise MutationError(f"{entity.name}: unknown column {name!r}")
            if name not in given:
                given.append(name)
    data: dict[str, list[object]] = {name: [] for name in given}
    for row in rows:
        for name in given:
            col = entity.column(name)
            try:
                data[name].append(coerce_value(col, row.get(name)))
            except (TypeError, ValueError, InvalidOperation) as exc:
                raise MutationError(f"{entity.name}.{name}: {exc}") from None
    schema = {name: entity.column(name).truth_dtype for name in given}
    return pl.DataFrame(data, schema=schema)


def coerce_keys(entity: Entity, keys: Sequence[Sequence[object]]) -> pl.DataFrame:
    """Raw key values as a frame with columns ``_k0``, ``_k1`` ... (the serving key order)."""
    data: dict[str, list[object]] = {f"_k{i}": [] for i in range(len(entity.key))}
    for key in keys:
        if isinstance(key, str | int) or len(key) != len(entity.key):
            raise MutationError(f"{entity.name}: a key is a list of {len(entity.key)} value(s)")
        for i, (col, value) in enumerate(zip(entity.key_columns, key, strict=True)):
            wanted = int if col.kind == "number" else str
            if isinstance(value, bool) or not isinstance(value, wanted):
                raise MutationError(f"{entity.name}.{col.name}: bad key value {value!r}")
            data[f"_k{i}"].append(value)
    schema = {
        f"_k{i}": pl.Int64() if col.kind == "number" else pl.String()
        for i, col in enumerate(entity.key_columns)
    }
    return pl.DataFrame(data, schema=schema)
