"""When the background sensor launches a night's run: the decision, as a pure function."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from syncflow_dagster.background.schedules import BackgroundSchedule

NightKey = Callable[[datetime], str]
"""The night (a daily partition key) an instant belongs to."""

GUARD_SECONDS = 600
"""dagster/max_runtime runs this long past the window's end: the last-resort stop."""


@dataclass(frozen=True)
class Launch:
    """A run to request: its night, run key and the runtime guard."""

    entity: str
    night: str
    run_key: str
    max_runtime: int


def night_of(schedule: BackgroundSchedule, now: datetime, night_key: NightKey) -> str:
    """The night of the window open at ``now``: the one its opening belongs to."""
    return night_key(schedule.window.opened(now) or now)


def decide(
    schedule: BackgroundSchedule,
    now: datetime,
    busy: bool,
    night_key: NightKey,
) -> Launch | str:
    """The run to launch for this background sync now, or why none.

    Only inside the window, never while a run of the entity is queued or
    working, never on hold, never past the night's budget. The run key names
    the night and the progress: the same state of a night never launches
    twice, and a run that made progress makes room for the next one. A sync
    that is done tonight (caught up) looks again once an hour.
    """
    row = schedule.row
    if row.on_hold:
        return "on hold"
    if not schedule.window.is_open(now):
        return "outside its window"
    if busy:
        return "a run of the entity is queued or working"
    night = night_of(schedule, now, night_key)
    tonight = row.night == night
    if tonight and row.night_rows >= schedule.budget and row.trigger_requested_at is None:
        return f"tonight's budget of {schedule.budget:,} rows is spent"
    if tonight and row.status == "done" and row.mode == "full" and row.trigger_requested_at is None:
        return "tonight's full pass is complete"
    progress = f"{row.rows_done}:{row.status}"
    if row.status in ("done", "failed"):
        progress += f":{now:%Y%m%d%H}"  # look again (or retry) once an hour
    if row.trigger_requested_at is not None:
        progress += f":t{row.trigger_requested_at.timestamp():.0f}"
    left = int(schedule.window.seconds_left(now))
    return Launch(row.entity, night, f"bg:{row.entity}:{night}:{progress}", left + GUARD_SECONDS)
