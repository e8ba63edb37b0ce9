"""The normalize stage: raw ERP text columns to typed columns, and one failure per bad record.

How the columns are read is in :mod:`syncflow_dagster.stages.normalize.reading`;
this module checks the input and assembles the result.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import polars as pl

from syncflow_dagster.stages.failures import ROW, empty_failures
from syncflow_dagster.stages.normalize.base import ColumnNormalizer
from syncflow_dagster.stages.normalize.datetimes import LocalDatetimeNormalizer
from syncflow_dagster.stages.normalize.details import failures_frame
from syncflow_dagster.stages.normalize.flags import FlagNormalizer
from syncflow_dagster.stages.normalize.numbers import NumberNormalizer
from syncflow_dagster.stages.normalize.oracle_types import ColumnSpec, OracleKind
from syncflow_dagster.stages.normalize.reading import plan_column, read_columns
from syncflow_dagster.stages.normalize.strings import StringNormalizer
from syncflow_dagster.stages.normalize.timestamps_tz import TimestampTzNormalizer


@dataclass(frozen=True)
class NormalizeResult:
    """What the normalize stage returns.

    Attributes:
        frame: the records that normalized cleanly, in input order: ``_row``,
            every spec'd column typed, other columns untouched.
        failures: one row per failed record (``_row``, ``code``, ``column``,
            ``detail``; see :mod:`syncflow_dagster.stages.failures`).
    """

    frame: pl.DataFrame
    failures: pl.DataFrame


def normalizer_for(spec: ColumnSpec, erp_time_zone: str) -> ColumnNormalizer:
    """The normalizer that reads ``spec``'s column."""
    oracle_type = spec.oracle_type
    if spec.is_flag:
        return FlagNormalizer()
    match oracle_type.kind:
        case OracleKind.NUMBER | OracleKind.INTEGER:
            return NumberNormalizer(oracle_type)
        case OracleKind.DATE | OracleKind.TIMESTAMP:
            return LocalDatetimeNormalizer(oracle_type, erp_time_zone)
        case OracleKind.TIMESTAMP_TZ:
            return TimestampTzNormalizer(oracle_type)
        case _:
            return StringNormalizer(oracle_type)


Specs = Mapping[str, ColumnSpec] | Iterable[ColumnSpec]


def _spec_mapping(specs: Specs) -> dict[str, ColumnSpec]:
    if isinstance(specs, Mapping):
        for name, spec in specs.items():
            if spec.name != name:
                raise ValueError(f"spec for column {name} is named {spec.name}")
        return dict(specs)
    mapping: dict[str, ColumnSpec] = {}
    for spec in specs:
        if spec.name in mapping:
            raise ValueError(f"column {spec.name} has two specs")
        mapping[spec.name] = spec
    return mapping


def _checked_input(
    frame: pl.DataFrame, specs: Specs, erp_time_zone: str
) -> tuple[pl.DataFrame, dict[str, ColumnSpec]]:
    try:
        ZoneInfo(erp_time_zone)
    except Exception as exc:
        raise ValueError(f"unknown ERP time zone {erp_time_zone!r}") from exc
    if ROW not in frame.columns:
        raise ValueError(f"the frame has no {ROW} column")
    mapping = _spec_mapping(specs)
    casts = []
    for name in mapping:
        if name == ROW:
            raise ValueError(f"{ROW} is the row id, not a column to normalize")
        if name not in frame.columns:
            raise ValueError(f"column {name} is missing from the frame")
        dtype = frame.schema[name]
        if dtype == pl.Null:
            casts.append(pl.col(name).cast(pl.String))
        elif dtype != pl.String:
            raise TypeError(f"column {name} must arrive as String, not {dtype}")
    return (frame.with_columns(casts) if casts else frame), mapping


def normalize(frame: pl.DataFrame, specs: Specs, erp_time_zone: str) -> NormalizeResult:
    """Normalize raw ERP records.

    Args:
        frame: raw records, every column ``pl.String`` (JSON null as null), plus
            a unique integer ``_row`` id.
        specs: column name -> :class:`ColumnSpec` (or just the specs), in the
            order failures are attributed ("the first failing column").
        erp_time_zone: IANA name of the zone the ERP's naive dates are in.

    Returns:
        The clean records and one failure row per record that has any value that
        cannot be read; every input row is in exactly one of the two.

    Raises:
        ValueError: unknown time zone, no ``_row``, a spec'd column missing, or
            specs that disagree with their names.
        TypeError: a spec'd column is not text.
    """
    frame, mapping = _checked_input(frame, specs, erp_time_zone)
    columns = [
        plan_column(order, name, normalizer_for(spec, erp_time_zone), frame[name])
        for order, (name, spec) in enumerate(mapping.items())
    ]
    read = read_columns(columns)
    typed = [values for values, _ in read]
    failed = [failures for _, failures in read if failures is not None]
    out = frame.with_columns(typed)
    if not failed:
        return NormalizeResult(out, empty_failures())
    failures, positions = failures_frame(failed, frame[ROW])
    keep = pl.repeat(True, frame.height, eager=True).scatter(positions, False)
    return NormalizeResult(out.filter(keep), failures)
