"""Partitions: one night's window per partition key, in the ERP's time zone."""

from collections.abc import Callable
from datetime import datetime, time

import dagster as dg

PARTITIONS_START = "2026-01-01"


def nightly_partitions(timezone: str, window_start: time) -> dg.DailyPartitionsDefinition:
    """Daily partitions whose window opens at the background window's start.

    With a 19:00 start, partition ``2026-11-26`` is 2026-11-26 19:00 → 2026-11-27 19:00
    in the ERP zone; the window under way has a key too (``end_offset=1``), so
    tonight's run can be launched tonight.
    """
    return dg.DailyPartitionsDefinition(
        start_date=PARTITIONS_START,
        timezone=timezone,
        hour_offset=window_start.hour,
        minute_offset=window_start.minute,
        end_offset=1,
    )


def night_key(partitions: dg.PartitionsDefinition | None) -> Callable[[datetime], str]:
    """The night (partition key) an instant belongs to, under these partitions."""
    assert isinstance(partitions, dg.TimeWindowPartitionsDefinition), "nightly partitions needed"

    def key(moment: datetime) -> str:
        return str(partitions.get_partition_key_for_timestamp(moment.timestamp()))

    return key
