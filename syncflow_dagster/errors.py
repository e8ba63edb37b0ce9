"""One vocabulary of failure: a root error and its three kinds.

Every error SyncFlow raises on purpose derives from :class:`SyncFlowError`
through one of three kinds, which decide what happens next:

* :class:`TransientError` — the world may fix it by itself (a server down, a
  timeout, another run holding the entity): a retry later may succeed, so the
  sensors retry it with backoff.
* :class:`PermanentError` — the same input fails the same way (a value the hub
  rejects, a broken invariant): it waits for a person or for the ERP row to change.
* :class:`ConfigurationError` — SyncFlow is set up wrongly (entity YAML,
  settings, the state schema): nothing runs until someone fixes the setup; the
  message names the file, entity and field (or the setting).

The kind is recorded on batches and dead letters (``error_kind``); dlt's
``TerminalException`` / ``TransientException`` and the Singer SDK's
``FatalAPIError`` / ``RetriableAPIError`` are the pattern.
"""

from typing import ClassVar, Literal

import httpx

ErrorKind = Literal["transient", "permanent", "configuration"]
ERROR_KINDS: tuple[ErrorKind, ...] = ("transient", "permanent", "configuration")


class SyncFlowError(Exception):
    """The root of every error SyncFlow raises on purpose."""

    kind: ClassVar[ErrorKind] = "permanent"


class TransientError(SyncFlowError):
    """A failure that may go away by itself: retry later, with backoff."""

    kind: ClassVar[ErrorKind] = "transient"


class PermanentError(SyncFlowError):
    """A failure that repeats for the same input: it needs a person or new data."""

    kind: ClassVar[ErrorKind] = "permanent"


class ConfigurationError(SyncFlowError, ValueError):
    """SyncFlow is configured wrongly; the message says where (file, entity, field, setting)."""

    kind: ClassVar[ErrorKind] = "configuration"


def error_kind(exc: BaseException) -> ErrorKind:
    """The kind of any exception: its own for SyncFlow's errors, else by its type.

    Transport failures and timeouts of the HTTP stack are transient; anything
    else SyncFlow did not raise on purpose is permanent (a bug or an
    unexpected answer, which a blind retry would only repeat).
    """
    if isinstance(exc, SyncFlowError):
        return exc.kind
    if isinstance(exc, httpx.TransportError | TimeoutError | ConnectionError):
        return "transient"
    cause = exc.__cause__
    if cause is not None and cause is not exc:
        return error_kind(cause)
    return "permanent"


def kind_of_class(name: str) -> ErrorKind:
    """The kind of an error known only by its class name (e.g. from a failure event).

    SyncFlow's own errors have their kind; any other class counts as transient
    here, since a run that failed outside its steps (its process died, it ran
    out of time) may well succeed when tried again.
    """
    pending: list[type[SyncFlowError]] = [SyncFlowError]
    while pending:
        cls = pending.pop()
        if cls.__name__ == name:
            return cls.kind
        pending.extend(cls.__subclasses__())
    return "transient"
