"""Retries for both HTTP clients: which failures are transient, and how long to wait.

Transient: 408, 429, 502, 503, 504, timeouts and dropped connections. The wait
grows exponentially from ``base_delay`` (plus up to 50 % jitter) and stays within
[``base_delay``, ``max_delay``]; a server's ``Retry-After`` is never cut short: the
retry waits at least that long, and a ``Retry-After`` beyond ``max_delay``
(MAX_RETRY_DELAY_SECONDS) gives up at once with :class:`RetryAfterTooLongError`
(the next run tries again). Everything else (401, 404, 413, 422, 500, …) fails at once.

A server that refuses the connection (or whose name does not resolve) before the
policy ever reached it gets ``connect_grace`` seconds (CONNECT_GRACE_SECONDS) instead
of the whole backoff budget: nothing listening at the URL is a wrong setting or a
server that is down, and the run should say so within seconds, naming the URL
(:class:`UnreachableError`). Once the server answered, a refused connection is a
restart and gets the full budget.
"""

import math
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TypeVar

import httpx

from syncflow_dagster.errors import TransientError

TRANSIENT_STATUS = frozenset({408, 429, 502, 503, 504})
T = TypeVar("T")


class TransientHTTPError(TransientError):
    """A response or failure worth retrying; carries the server's Retry-After if any.

    ``service`` names the server and ``request`` the method and URL path asked
    (e.g. ``POST /api/v1/ingest/items``), when known.
    """

    def __init__(
        self,
        message: str,
        retry_after: float | None = None,
        *,
        service: str | None = None,
        request: str | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.service = service
        self.request = request


class RetriesExhaustedError(TransientError):
    """The last of ``max_retries`` retries failed too."""


class UnreachableError(RetriesExhaustedError):
    """Nothing answered at the URL within the connect grace, before the server was ever reached."""


class RetryAfterTooLongError(TransientError):
    """The server asked to wait (Retry-After) longer than MAX_RETRY_DELAY_SECONDS allows."""

    def __init__(self, message: str, retry_after: float, budget: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.budget = budget


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The Retry-After header as seconds (delta-seconds or an HTTP date), if present."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class RetryPolicy:
    """MAX_RETRIES, RETRY_DELAY_SECONDS and MAX_RETRY_DELAY_SECONDS, as a policy."""

    max_retries: int = 3
    base_delay: float = 60.0
    max_delay: float = 3600.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    connect_grace: float | None = None
    """CONNECT_GRACE_SECONDS: how long a refused connection is retried while this policy
    has never reached its server (None: the full backoff budget, as for any failure)."""
    clock: Callable[[], float] = time.monotonic
    reached: bool = field(default=False, init=False)
    """Whether a call through this policy ever got an answer from the server."""

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based).

        The backoff stays within [``base_delay``, ``max_delay``]; a ``retry_after``
        is never cut short (:meth:`call` gives up before asking for one beyond
        ``max_delay``).
        """
        raw = self.base_delay * (2 ** (attempt - 1))
        wait = min(max(raw * (1 + self.rng.random() / 2), self.base_delay), self.max_delay)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return wait

    def call(
        self,
        what: str,
        fn: Callable[[], T],
        on_retry: Callable[[int, str, float], None] | None = None,
        url: str | None = None,
    ) -> T:
        """Run ``fn``, retrying transient failures; ``what`` names the call in errors.

        ``on_retry(attempt, reason, wait)`` is told of each retry before its wait
        (the clients log it, see :func:`syncflow_dagster.logs.upstream_call`);
        ``url`` (credentials masked) is named in the errors.

        Raises:
            RetriesExhaustedError: when every attempt failed transiently.
            UnreachableError: when the server, never reached before, refused every
                connection for ``connect_grace`` seconds.
            RetryAfterTooLongError: at once, when the server asks to wait longer
                than ``max_delay`` (its Retry-After is never cut short).
        """
        attempt = 0
        began = self.clock()
        where = f"{what} ({url})" if url else what
        while True:
            try:
                result = fn()
            except (TransientHTTPError, httpx.TimeoutException, httpx.TransportError) as exc:
                reason = _describe(exc)
                attempt += 1
                retry_after = exc.retry_after if isinstance(exc, TransientHTTPError) else None
                if isinstance(exc, TransientHTTPError):
                    self.reached = True  # the server answered, if only to ask for patience
                if retry_after is not None and retry_after > self.max_delay:
                    raise _too_long(what, exc, retry_after, self.max_delay) from exc
                wait = self.delay(attempt, retry_after)
                if self.connect_grace is not None and not self.reached and _never_connected(exc):
                    left = self.connect_grace - (self.clock() - began)
                    if left <= 0 or attempt > self.max_retries:
                        raise UnreachableError(
                            f"{what}: no server answers at {url or 'its URL'} ({reason}); "
                            f"gave up after {self.clock() - began:.0f} s "
                            f"(CONNECT_GRACE_SECONDS={self.connect_grace:g}): is the server "
                            "running, and is its URL setting right?"
                        ) from exc
                    wait = min(wait, left)
                elif attempt > self.max_retries:
                    raise RetriesExhaustedError(
                        f"{where}: gave up after {self.max_retries} retries; last failure: {reason}"
                    ) from exc
                if on_retry is not None:
                    on_retry(attempt, reason, wait)
                self.sleep(wait)
            else:
                self.reached = True
                return result


def _too_long(
    what: str, exc: Exception, retry_after: float, budget: float
) -> RetryAfterTooLongError:
    server = getattr(exc, "service", None) or "the server"
    asked = getattr(exc, "request", None)
    return RetryAfterTooLongError(
        f"{what}: {server} asked to retry after {math.ceil(retry_after)} s (Retry-After)"
        + (f" on {asked}" if asked else "")
        + f", longer than MAX_RETRY_DELAY_SECONDS ({budget:g} s): gave up at once "
        f"instead of retrying early; the next run tries again (last answer: {exc})",
        retry_after,
        budget,
    )


def _never_connected(exc: BaseException) -> bool:
    """Whether the failure is a connection that was never made: refused, or no such host."""
    seen: BaseException | None = exc
    for _ in range(8):  # the client's error, its cause, and theirs
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError | socket.gaierror):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _describe(exc: Exception) -> str:
    if isinstance(exc, TransientHTTPError):
        return str(exc)
    if isinstance(exc, httpx.TimeoutException):
        return f"timeout ({type(exc).__name__})"
    return f"connection failed ({type(exc).__name__}: {exc})"
