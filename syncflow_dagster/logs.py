"""One logging setup for SyncFlow's processes: the CLI, the operations API, the code location.

:func:`setup_logging` applies the settings: ``LOG_LEVEL`` on SyncFlow's
loggers (``DEBUG=true`` turns it to DEBUG), one handler on stderr writing JSON
lines when ``APP_ENV`` is production and readable lines otherwise. Every line
passes through :class:`Redactor`: a bearer token and the value of every secret
setting are masked wherever they appear (message, arguments, traceback), so a
token that slipped into an error message still never reaches a log.

Inside Dagster runs the ``syncflow_dagster`` logger is a managed Python logger
(``python_logs`` in ``dagster.yaml``): its records also go to the run's event log.

The HTTP call trail (:func:`upstream_call`) is what the two clients wrap
around ``RetryPolicy.call``: each retry is logged at WARNING with the upstream,
the URL (credentials masked), the attempt, the reason and the next wait, and
retries and failed calls are counted per upstream (Prometheus counters, shared
by every process on the host when ``PROMETHEUS_MULTIPROC_DIR`` is set).
"""

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

from prometheus_client import CollectorRegistry, Counter

from syncflow_dagster.settings import MASK, Settings, mask_url

ROOT_LOGGER = "syncflow_dagster"
"""SyncFlow's loggers all live under this name (``logging.getLogger(__name__)``)."""

_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]{8,}")
_MIN_SECRET = 6
"""Shorter secret values are not masked (they would mangle ordinary words)."""

# The attributes every LogRecord has; anything else was passed in ``extra``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message"}
)


class Redactor:
    """Masks bearer tokens and known secret values in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = {s for s in secrets if s and len(s) >= _MIN_SECRET}
        # Longest first, so that a secret containing another is masked whole.
        self._secrets = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """``text`` with every bearer token and secret value replaced by ``***``."""
        text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


def secret_values(settings: Settings) -> list[str]:
    """The values of every secret setting (tokens, passwords, the JWT secret)."""
    values: list[str] = []
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name)
        if value is None or "SecretStr" not in str(field.annotation):
            continue
        text = value.get_secret_value()
        values.append(text)
        # A list of tokens (NAME:TOKEN, comma-separated) is masked item by item too.
        for item in text.split(","):
            values.append(item.strip())
            values.append(item.strip().partition(":")[2])
    url = settings.state_db_url
    if url.password:
        values.append(str(url.password))
    return values


class _Formatter(logging.Formatter):
    """Readable lines: time, level, logger, message, then any extra fields."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        """The record as one readable line, secrets masked."""
        line = super().format(record)
        extra = _extras(record)
        if extra:
            line += " " + " ".join(f"{k}={v}" for k, v in extra.items())
        return self.redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, extras, ``exc``."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line, secrets masked."""
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": self.redact(record.getMessage()),
        }
        for key, value in _extras(record).items():
            doc[key] = self.redact(value) if isinstance(value, str) else value
        if record.exc_info:
            doc["exc"] = self.redact(self.formatException(record.exc_info))
        return json.dumps(doc, default=str, ensure_ascii=False)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


_HANDLER_MARK = "_syncflow_handler"


def effective_level(settings: Settings) -> int:
    """LOG_LEVEL, or DEBUG when DEBUG is true."""
    return logging.DEBUG if settings.debug else logging.getLevelNamesMapping()[settings.log_level]


def set_level(settings: Settings) -> None:
    """Apply LOG_LEVEL / DEBUG to SyncFlow's loggers only (inside Dagster's processes).

    In the code location Dagster owns the handlers: ``python_logs`` in the
    instance file routes the ``syncflow_dagster`` logger into the event log.
    """
    logging.getLogger(ROOT_LOGGER).setLevel(effective_level(settings))


def setup_logging(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Apply LOG_LEVEL / DEBUG and the APP_ENV format to this process's logging.

    Installs one handler on the root logger (replacing the one an earlier call
    installed), sets the level of the root and of SyncFlow's loggers, and lets
    uvicorn's loggers through the same handler. Safe to call again.

    Returns:
        The handler installed.
    """
    level = effective_level(settings)
    redact = Redactor(secret_values(settings))
    handler = logging.StreamHandler(stream or sys.stderr)
    formatter = JsonFormatter(redact) if settings.app_env == "production" else _Formatter(redact)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger(ROOT_LOGGER).setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
        server_logger.setLevel(level)
    # Libraries that chatter at DEBUG about every connection stay at INFO unless asked.
    for name in ("httpcore", "httpx", "urllib3", "gql", "asyncio"):
        logging.getLogger(name).setLevel(max(level, logging.INFO))
    logging.captureWarnings(True)
    return handler


# --- the HTTP call trail ---------------------------------------------------------------

trail_log = logging.getLogger(f"{ROOT_LOGGER}.edges.http")


class _UpstreamCounters:
    """Retries and failed calls per upstream, as Prometheus counters (created on first use)."""

    def __init__(self) -> None:
        self.registry: CollectorRegistry | None = None
        self.retries: Counter | None = None
        self.failures: Counter | None = None

    def ensure(self) -> "_UpstreamCounters":
        if self.registry is None:
            registry = CollectorRegistry(auto_describe=True)
            self.retries = Counter(
                "syncflow_http_retries",
                "HTTP requests to an upstream that failed transiently and were retried",
                ["upstream"],
                registry=registry,
            )
            self.failures = Counter(
                "syncflow_http_failures",
                "HTTP calls to an upstream that ended in an error (after any retries)",
                ["upstream"],
                registry=registry,
            )
            self.registry = registry
        return self


UPSTREAM_COUNTERS = _UpstreamCounters()
"""This process's counters; ``/api/v1/metrics`` reads them (or every process's, see above)."""


class upstream_call:  # noqa: N801 - used like a function: ``with upstream_call(...) as hook``
    """The trail of one call to an upstream through ``RetryPolicy.call``.

    ``with upstream_call("APISmith", "GET", url) as on_retry:
    return policy.call(what, fn, on_retry)`` — each retry is logged at WARNING
    and counted; a call that leaves with an error is counted as a failure.
    """

    __slots__ = ("method", "upstream", "url")

    def __init__(self, upstream: str, method: str, url: str) -> None:
        self.upstream = upstream
        self.method = method
        self.url = url

    def __enter__(self) -> "upstream_call":
        return self

    def __call__(self, attempt: int, reason: str, wait: float) -> None:
        """``RetryPolicy.call``'s ``on_retry``: log and count one retry."""
        url = mask_url(self.url)
        trail_log.warning(
            "%s %s %s failed (attempt %d): %s; retrying in %.1f s",
            self.upstream,
            self.method,
            url,
            attempt,
            reason,
            wait,
            extra={
                "upstream": self.upstream,
                "url": url,
                "attempt": attempt,
                "wait_seconds": round(wait, 3),
            },
        )
        counters = UPSTREAM_COUNTERS.ensure()
        assert counters.retries is not None
        counters.retries.labels(self.upstream.lower()).inc()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is not None and issubclass(kind, Exception):
            counters = UPSTREAM_COUNTERS.ensure()
            assert counters.failures is not None
            counters.failures.labels(self.upstream.lower()).inc()
