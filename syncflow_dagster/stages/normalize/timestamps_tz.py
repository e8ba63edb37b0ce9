"""TIMESTAMP WITH TIME ZONE columns: text with an offset to UTC instants."""

import polars as pl

from syncflow_dagster.stages.normalize.base import FailureCode, FastPath, Parsed, as_frame, codes_of
from syncflow_dagster.stages.normalize.oracle_types import (
    FIRST_INSTANT_US,
    UTC_DATETIME,
    OracleType,
)

NAIVE = pl.Datetime("us")

#: The ERP's own rendering, e.g. ``2026-11-26 14:03:00.123456 +01:00``.
CANONICAL_FORMAT = "%Y-%m-%d %H:%M:%S%.f %:z"
#: Fraction digits Oracle renders when the type does not say (TIMESTAMP = TIMESTAMP(6)).
DEFAULT_FRACTION_DIGITS = 6
_LOCAL = "%Y-%m-%d %H:%M:%S"
_WALL = "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}"
# date, time, fraction, offset (Z, +hh, +hhmm, +hh:mm); "T" or " " between date
# and time; an optional space before the offset; "," also marks the fraction.
_TIMESTAMP_TZ = (
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2})[T ]([0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:[.,]([0-9]{1,9}))? ?([Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)$"
)


class TimestampTzNormalizer:
    """``2026-11-26 14:03:00.123456 +01:00`` and ISO 8601 with an offset or ``Z``."""

    def __init__(self, oracle_type: OracleType) -> None:
        """Remember the declared type (for messages)."""
        self.oracle_type = oracle_type

    @property
    def dtype(self) -> pl.DataType:
        """Datetime("us", "UTC")."""
        return UTC_DATETIME

    def fast(self, raw: pl.Expr, sample: pl.Series) -> FastPath:
        """The ERP's own rendering with the type's number of fraction digits, read arithmetically.

        ``YYYY-MM-DD HH:MM:SS.ffffff +hh:mm``: the exact layout is checked with
        a regex (strptime is lenient), the wall-clock part goes through Polars'
        fast parser and the fraction and offset are added as integers (chrono's
        ``%.f`` and ``%:z`` are several times slower).
        """
        digits = self.oracle_type.fractional_seconds
        digits = DEFAULT_FRACTION_DIGITS if digits is None else digits
        fraction = rf"\.[0-9]{{{digits}}}" if digits else ""
        layout = rf"^{_WALL}{fraction} [+-][0-9]{{2}}:[0-9]{{2}}$"
        zone = 20 + (digits + 1 if digits else 0)  # where "+hh:mm" starts
        local = raw.str.slice(0, 19).str.strptime(NAIVE, _LOCAL, strict=False, cache=False)
        micros: pl.Expr = pl.lit(0, pl.Int64)
        if digits:
            kept = min(digits, 6)
            micros = raw.str.slice(20, kept).cast(pl.Int64, strict=False) * 10 ** (6 - kept)
        hours = raw.str.slice(zone + 1, 2).cast(pl.Int64, strict=False)
        minutes = raw.str.slice(zone + 4, 2).cast(pl.Int64, strict=False)
        sign = pl.when(raw.str.slice(zone, 1) == "-").then(-60_000_000).otherwise(60_000_000)
        instant = local.cast(pl.Int64) + micros - (hours * 60 + minutes) * sign
        readable = raw.str.contains(layout) & (hours <= 23) & (minutes <= 59)
        readable = readable & (instant >= FIRST_INSTANT_US)
        return FastPath(pl.when(readable).then(instant.cast(UTC_DATETIME)))

    def slow(self, raw: pl.Series) -> Parsed:
        """Every accepted form, rewritten to the canonical one and parsed."""
        text = pl.col("raw").str.strip_chars()
        parts = (
            as_frame(raw)
            .lazy()
            .select(
                empty=text.fill_null("").str.len_bytes() == 0,
                parts=text.str.extract_groups(_TIMESTAMP_TZ),
            )
            .unnest("parts")
            .rename({"1": "date", "2": "time", "3": "fraction", "4": "zone"})
        )
        zone = pl.col("zone")
        offset = (
            pl.when(zone.str.to_uppercase() == "Z")
            .then(pl.lit("+00:00"))
            .when(zone.str.len_bytes() == 3)
            .then(zone + pl.lit(":00"))
            .otherwise(pl.concat_str([zone.str.slice(0, 3), pl.lit(":"), zone.str.slice(-2)]))
        )
        canonical = pl.concat_str(
            [
                pl.col("date"),
                pl.lit(" "),
                pl.col("time"),
                pl.lit("."),
                pl.col("fraction").fill_null("0"),
                pl.lit(" "),
                offset,
            ]
        )
        out = (
            parts.with_columns(
                value=canonical.str.strptime(UTC_DATETIME, CANONICAL_FORMAT, strict=False)
            )
            .with_columns(
                value=pl.when(pl.col("value").cast(pl.Int64) >= FIRST_INSTANT_US).then("value")
            )
            .select(
                "value",
                code=codes_of(
                    (pl.col("empty"), None),
                    (pl.col("value").is_null(), FailureCode.TIMESTAMP_UNREADABLE),
                ),
            )
            .collect()
        )
        return Parsed(out["value"], out["code"])

    def problem(self, code: FailureCode) -> str:
        """What went wrong, in words."""
        return (
            f"not a {self.oracle_type} (expected e.g. 2026-11-26 14:03:00.123456 +01:00 "
            "or ISO 8601 with an offset or Z)"
        )
