"""A nightly window in a time zone: whether it is open, when it closes, which night it is.

Windows may cross midnight (19:00–07:00) and daylight-saving changes: the
times are wall-clock times in the window's zone, so a window that opens at
19:00 and closes at 07:00 is 13 hours long on the night clocks go back.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def parse_clock(text: str) -> time:
    """``HH:MM`` (or ``HH:MM:SS``) as a time.

    Raises:
        ValueError: naming the text.
    """
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time of day (HH:MM)") from None


@dataclass(frozen=True)
class Window:
    """From ``start`` to ``end`` every night, in ``timezone``."""

    start: time
    end: time
    timezone: str

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError("a window needs different start and end times")
        ZoneInfo(self.timezone)  # raises for an unknown zone

    @property
    def zone(self) -> ZoneInfo:
        """The window's time zone."""
        return ZoneInfo(self.timezone)

    def _at(self, day: date, clock: time) -> datetime:
        return datetime.combine(day, clock, tzinfo=self.zone)

    def opened(self, now: datetime) -> datetime | None:
        """When the window that is open at ``now`` opened (None: it is closed)."""
        local = now.astimezone(self.zone)
        for day in (local.date(), local.date() - timedelta(days=1)):
            opens = self._at(day, self.start)
            closes = self._at(day + timedelta(days=1 if self.end <= self.start else 0), self.end)
            if opens <= local < closes:
                return opens
        return None

    def is_open(self, now: datetime) -> bool:
        """Whether ``now`` is inside the window."""
        return self.opened(now) is not None

    def closes(self, now: datetime) -> datetime:
        """When the window open at ``now`` closes (or, when closed, the next one)."""
        opens = self.opened(now) or self.next_opening(now)
        local = opens.astimezone(self.zone)
        day = local.date() + timedelta(days=1 if self.end <= self.start else 0)
        return self._at(day, self.end)

    def next_opening(self, now: datetime) -> datetime:
        """When the window next opens after ``now``."""
        local = now.astimezone(self.zone)
        opens = self._at(local.date(), self.start)
        return opens if opens > local else self._at(local.date() + timedelta(days=1), self.start)

    def seconds_left(self, now: datetime) -> float:
        """Seconds until the open window closes (0 when it is closed)."""
        if not self.is_open(now):
            return 0.0
        # In UTC: aware datetimes of one zone subtract as wall clocks, which is
        # an hour off on the night the clocks change.
        left = self.closes(now).astimezone(UTC) - now.astimezone(UTC)
        return max(0.0, left.total_seconds())
