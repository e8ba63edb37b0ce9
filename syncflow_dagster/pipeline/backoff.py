"""When a waiting child or a dead letter is tried again: exponential backoff, a few attempts.

After attempt ``n`` failed (``n`` = 1, 2, …), the next try is due
``base · 2^n`` seconds later, plus up to 25 % jitter so that many records do
not come due at once, and never later than ``cap`` seconds. After
``max_attempts`` failed attempts the record stops being retried by itself:
a waiting child is dead-lettered, a dead letter waits for a person.
"""

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

MAX_ATTEMPTS = 5


@dataclass
class Backoff:
    """RETRY_DELAY_SECONDS, MAX_RETRY_DELAY_SECONDS and the attempt limit, as a policy."""

    base_seconds: float = 60.0
    cap_seconds: float = 3600.0
    max_attempts: int = MAX_ATTEMPTS
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` failed attempts (jitter included)."""
        raw = self.base_seconds * (2**attempts)
        return min(raw * (1 + self.rng.random() / 4), self.cap_seconds)

    def next_retry_at(self, now: datetime, attempts: int) -> datetime | None:
        """When the next attempt is due, or None when the attempts are spent."""
        if attempts >= self.max_attempts:
            return None
        return now + timedelta(seconds=self.delay(attempts))
