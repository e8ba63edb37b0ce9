"""DATE and TIMESTAMP columns: naive ERP-local text to UTC instants.

The ERP renders these without a zone; they are wall-clock times in the ERP's
time zone. A wall-clock time the zone skips (spring forward) fails; one it
repeats (fall back) takes the earlier of the two instants.
"""

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from syncflow_dagster.stages.normalize.base import FailureCode, FastPath, Parsed, as_frame, codes_of
from syncflow_dagster.stages.normalize.oracle_types import (
    FIRST_INSTANT_US,
    UTC_DATETIME,
    OracleKind,
    OracleType,
)
from syncflow_dagster.stages.timezones import wall_clock_to_utc

NAIVE = pl.Datetime("us")
_MONTHS = "(?i:JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)"
#: DD-MON-RR: two-digit years below this are 20xx, the others 19xx.
RR_PIVOT = 50


def _same(text: pl.Expr) -> pl.Expr:
    return text


def _rr_to_yyyy(text: pl.Expr) -> pl.Expr:
    """``26-NOV-26`` -> ``26-NOV-2026`` (00-49: 20xx, 50-99: 19xx)."""
    yy = text.str.slice(-2)
    century = (
        pl.when(yy.cast(pl.Int32, strict=False) < RR_PIVOT)
        .then(pl.lit("20"))
        .otherwise(pl.lit("19"))
    )
    return pl.concat_str([text.str.slice(0, text.str.len_bytes() - 2), century, yy])


@dataclass(frozen=True)
class _Form:
    """One accepted text form: its exact shape, a rewrite, and the strptime format."""

    shape: str
    prepare: Callable[[pl.Expr], pl.Expr]
    format: str


def _forms(fraction: bool) -> tuple[_Form, ...]:
    date = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
    time = "[0-9]{2}:[0-9]{2}:[0-9]{2}"
    forms = [
        _Form(rf"^{date}$", _same, "%Y-%m-%d"),
        _Form(rf"^{date} {time}$", _same, "%Y-%m-%d %H:%M:%S"),
        _Form(rf"^{date}T{time}$", _same, "%Y-%m-%dT%H:%M:%S"),
        _Form(rf"^[0-9]{{2}}-{_MONTHS}-[0-9]{{2}}$", _rr_to_yyyy, "%d-%b-%Y"),
        _Form(rf"^[0-9]{{2}}-{_MONTHS}-[0-9]{{4}}$", _same, "%d-%b-%Y"),
        _Form(r"^[0-9]{8}$", _same, "%Y%m%d"),
    ]
    if fraction:
        forms += [
            _Form(rf"^{date} {time}\.[0-9]{{1,9}}$", _same, "%Y-%m-%d %H:%M:%S%.f"),
            _Form(rf"^{date}T{time}\.[0-9]{{1,9}}$", _same, "%Y-%m-%dT%H:%M:%S%.f"),
        ]
    return tuple(forms)


def localize(naive: pl.Expr, time_zone: str) -> pl.Expr:
    """ERP wall-clock times to UTC, by the rule of :mod:`syncflow_dagster.stages.timezones`.

    Ambiguous times take the earlier instant; times in a daylight-saving gap the
    offset before it (PEP 495, ``fold=0``). Only a gap longer than three hours
    leaves a null, which the caller reports as a nonexistent local time.
    """
    return wall_clock_to_utc(naive, time_zone)


def _scatter(target: pl.Series, rows: pl.Series, values: pl.Series) -> pl.Series:
    return target.scatter(rows, values) if rows.len() else target


class LocalDatetimeNormalizer:
    """DATE (six forms) and TIMESTAMP (the same, with optional fractional seconds)."""

    def __init__(self, oracle_type: OracleType, time_zone: str) -> None:
        """Prepare the forms of ``oracle_type`` for wall-clock times in ``time_zone``."""
        self.oracle_type = oracle_type
        self.time_zone = time_zone
        self.is_date = oracle_type.kind is OracleKind.DATE
        self.forms = _forms(fraction=not self.is_date)
        if self.is_date:
            self.codes = (
                FailureCode.DATE_UNREADABLE,
                FailureCode.DATE_INVALID,
                FailureCode.DATE_NONEXISTENT_LOCAL_TIME,
            )
        else:
            self.codes = (
                FailureCode.TIMESTAMP_UNREADABLE,
                FailureCode.TIMESTAMP_INVALID,
                FailureCode.TIMESTAMP_NONEXISTENT_LOCAL_TIME,
            )

    @property
    def dtype(self) -> pl.DataType:
        """Datetime("us", "UTC")."""
        return UTC_DATETIME

    def fast(self, raw: pl.Expr, sample: pl.Series) -> FastPath:
        """The form most of ``sample`` has, if the wall-clock time exists locally.

        strptime alone is lenient (``226-11-26 14:03:00`` would be the year
        226), so the exact shape is checked too. Dates repeat a lot; when the
        sample says so, strptime caches its results.
        """
        form = self._dominant_form(sample)
        cache = sample.len() > 0 and sample.n_unique() * 2 < sample.len()
        naive = form.prepare(raw).str.strptime(NAIVE, form.format, strict=False, cache=cache)
        readable = raw.str.contains(form.shape) & (naive.cast(pl.Int64) >= FIRST_INSTANT_US)
        value = pl.when(readable).then(localize(naive, self.time_zone))
        return FastPath(value)

    def _dominant_form(self, sample: pl.Series) -> _Form:
        if sample.len() == 0:
            return self.forms[1]
        counts = [int(sample.str.contains(form.shape).sum()) for form in self.forms]
        return self.forms[counts.index(max(counts))] if max(counts) else self.forms[1]

    def slow(self, raw: pl.Series) -> Parsed:
        """Every form: each row is parsed only by the form whose shape it has."""
        text = raw.str.strip_chars()
        naive = pl.Series("naive", [None] * text.len(), dtype=NAIVE)
        shaped = pl.Series("shaped", [False] * text.len())
        todo = (text.str.len_bytes() > 0).arg_true()
        for form in self.forms:
            if todo.len() == 0:
                break
            candidates = text.gather(todo)
            hit = candidates.str.contains(form.shape)
            rows = todo.filter(hit)
            parsed = (
                as_frame(candidates.filter(hit))
                .lazy()
                .select(form.prepare(pl.col("raw")).str.strptime(NAIVE, form.format, strict=False))
                .select(pl.when(pl.first().cast(pl.Int64) >= FIRST_INSTANT_US).then(pl.first()))
                .collect()
            )
            naive = _scatter(naive, rows, parsed.to_series())
            shaped = _scatter(shaped, rows, pl.Series([True] * rows.len()))
            todo = todo.filter(~hit)
        unreadable, invalid, nonexistent = self.codes
        out = (
            pl.DataFrame({"text": text, "naive": naive, "shaped": shaped})
            .lazy()
            .with_columns(value=localize(pl.col("naive"), self.time_zone))
            .select(
                "value",
                code=codes_of(
                    (pl.col("text").fill_null("").str.len_bytes() == 0, None),
                    (~pl.col("shaped"), unreadable),
                    (pl.col("naive").is_null(), invalid),
                    (pl.col("value").is_null(), nonexistent),
                ),
            )
            .collect()
        )
        return Parsed(out["value"], out["code"])

    def problem(self, code: FailureCode) -> str:
        """What went wrong, in words."""
        unreadable, invalid, _ = self.codes
        if code is unreadable:
            forms = (
                "DD-MON-RR, DD-MON-YYYY, YYYY-MM-DD, YYYY-MM-DD HH:MM:SS, "
                "YYYY-MM-DDTHH:MM:SS, YYYYMMDD"
            )
            extra = "" if self.is_date else " (times may carry a fraction)"
            return f"not a {self.oracle_type} in a known form ({forms}){extra}"
        if code is invalid:
            return "no such calendar date or time"
        return f"local time that does not exist in {self.time_zone} (the zone skipped over 3 hours)"
