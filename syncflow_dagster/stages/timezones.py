"""ERP wall-clock times to UTC instants, one rule for every stage.

Naive ERP times are read in the ERP's zone the way PEP 495 reads them with
``fold=0``: an ambiguous time (the repeated hour when clocks go back) is the
earlier instant; a time in the gap when clocks go forward did not exist on the
wall, and is read with the offset in force before the gap (02:30 on a
spring-forward night in Berlin is 01:30 UTC, the instant a clock that missed
the change would have shown 02:30).
"""

from datetime import timedelta

import polars as pl

# Longer than any daylight-saving gap (30 min to 2 h), far shorter than the months
# between two transitions.
_GAP_PROBE = timedelta(hours=3)


def wall_clock_to_utc(expr: pl.Expr, time_zone: str) -> pl.Expr:
    """Naive ERP-local datetimes as UTC datetimes.

    Null only for a null input, or inside a gap longer than three hours (a zone
    that skipped a whole day, as Samoa did in 2011): callers treat that as unreadable.
    """
    direct = expr.dt.replace_time_zone(time_zone, ambiguous="earliest", non_existent="null")
    # In a gap, step back over it, localize (the pre-gap offset), then step forward again.
    before_gap = (expr - _GAP_PROBE).dt.replace_time_zone(
        time_zone, ambiguous="earliest", non_existent="null"
    ) + _GAP_PROBE
    return pl.coalesce(direct, before_gap).dt.convert_time_zone("UTC")
