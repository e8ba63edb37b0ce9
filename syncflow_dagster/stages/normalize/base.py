"""The shape every column normalizer has, and the failure codes they report.

A normalizer reads a column in two steps. The *fast path* is a Polars
expression over the whole column that settles the common, plain form cheaply.
The *slow path* reads every accepted form exactly and classifies failures; it
runs only on the rows the fast path left unsettled (filter-and-patch), so an
exotic value costs nothing for the clean ones.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import polars as pl


class FailureCode(StrEnum):
    """Machine-readable reasons a value cannot be normalized."""

    NUMBER_UNREADABLE = "number_unreadable"
    NUMBER_OUT_OF_RANGE = "number_out_of_range"
    NUMBER_SCALE_EXCEEDED = "number_scale_exceeded"
    DATE_UNREADABLE = "date_unreadable"
    DATE_INVALID = "date_invalid"
    DATE_NONEXISTENT_LOCAL_TIME = "date_nonexistent_local_time"
    TIMESTAMP_UNREADABLE = "timestamp_unreadable"
    TIMESTAMP_INVALID = "timestamp_invalid"
    TIMESTAMP_NONEXISTENT_LOCAL_TIME = "timestamp_nonexistent_local_time"
    STRING_TOO_LONG = "string_too_long"
    STRING_NUL = "string_nul"
    FLAG_UNREADABLE = "flag_unreadable"
    VALUE_NOT_SCALAR = "value_not_scalar"


@dataclass(frozen=True)
class FastPath:
    """The cheap read of a whole column.

    Attributes:
        value: the typed value; only trusted where the row is settled.
        settled: true where ``value`` is final; false or null sends the row to
            the slow path. ``None``: settled wherever ``value`` is not null.
            (A null raw value is always settled, as null, by the caller.)
    """

    value: pl.Expr
    settled: pl.Expr | None = None


@dataclass(frozen=True)
class Parsed:
    """The exact read of some raw values (the slow path's answer).

    Attributes:
        values: typed values, null where the raw value was null/empty or failed.
        codes: a :class:`FailureCode` value where the raw value failed, else null.
    """

    values: pl.Series
    codes: pl.Series


class ColumnNormalizer(Protocol):
    """Reads one column of raw ERP text into its typed form."""

    @property
    def dtype(self) -> pl.DataType:
        """The Polars type of the normalized values."""
        ...

    def fast(self, raw: pl.Expr, sample: pl.Series) -> FastPath:
        """The vectorized fast path over the raw column.

        ``sample`` is a few thousand non-null raw values spread over the column,
        for normalizers whose fastest form depends on how the ERP renders it.
        """
        ...

    def slow(self, raw: pl.Series) -> Parsed:
        """The exact read of ``raw`` (a String series, typically a few rows)."""
        ...

    def problem(self, code: FailureCode) -> str:
        """A human-readable explanation of ``code`` for this column's type."""
        ...


def as_frame(raw: pl.Series) -> pl.DataFrame:
    """``raw`` as a one-column frame named ``raw``, for expression-based slow paths."""
    return raw.rename("raw").to_frame()


def codes_of(*cases: tuple[pl.Expr, FailureCode | None]) -> pl.Expr:
    """The code of the first case whose condition holds (``None``: no failure), else null."""
    chain: pl.Expr = pl.lit(None, dtype=pl.String)
    for cond, code in reversed(cases):
        chain = pl.when(cond).then(pl.lit(code and code.value, dtype=pl.String)).otherwise(chain)
    return chain
