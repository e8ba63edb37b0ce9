"""The batch lifecycle — open, finish, fail, abandon — in one place.

Every path that runs a batch (the sync ops, the retry op, the sensors, the
operations API) goes through these functions, so that the rules hold
whatever launched the work:

* **open**: take the entity's lease (one run per entity at a time; a live
  holder makes this run fail fast), close the batches of dead runs, record
  the running batch, and keep the lease renewed on a thread while the run works.
* **finish**: close the batch (succeeded / paused / skipped) and release the
  lease in one transaction.
* **fail**: close it as failed with the error and its kind, and release the lease.
* **abandon**: close a batch whose run is over without having closed it
  (killed, crashed, lost its lease): sensors and the next run call this.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from syncflow_dagster.config.models import EntityConfig
from syncflow_dagster.edges.state import Lease, LeaseLostError, StateStore
from syncflow_dagster.edges.state.base import utcnow
from syncflow_dagster.edges.state.leases import process_gone
from syncflow_dagster.errors import error_kind, kind_of_class
from syncflow_dagster.pipeline.revision import mapping_identity

log = logging.getLogger(__name__)

LEASE_SECONDS = 120.0
"""How long a lease lives without renewal; the keeper renews it every quarter of that."""

RunStatus = Callable[[str], str | None]
"""A run id's status as the orchestrator knows it (e.g. ``"FAILURE"``), None if unknown."""

FINISHED_RUN_STATUSES = frozenset({"SUCCESS", "FAILURE", "CANCELED"})

LEASE_GONE = "no longer holds a live lease"
"""How an abandoned batch names a run that died without the orchestrator knowing."""


def died_unseen(store: StateStore, run_id: str) -> str | None:
    """Why a run the orchestrator still thinks is running is dead, or None if it may live.

    A run executed outside a launcher (``dagster job execute``, a script) that
    is killed stays STARTED for ever, holding its entity's place in the run
    queue. Its batch, abandoned because its lease died, says that it is gone.
    """
    batches = store.batches_of_run(run_id)
    if not batches or any(b["status"] == "running" for b in batches):
        return None
    for batch in reversed(batches):
        if LEASE_GONE in (batch["error"] or ""):
            return str(batch["error"])
    return None


@dataclass
class LeaseKeeper:
    """Renews one run's lease on a thread; senders ask it whether they may still send.

    The deadline is kept on the monotonic clock, which keeps counting while a
    process is stopped (SIGSTOP): a run that wakes up after its lease expired
    refuses to send before it even asks the database.
    """

    store: StateStore
    entity: str
    holder: str
    ttl: float = LEASE_SECONDS
    _deadline: float = field(default=0.0, init=False)
    _lost: BaseException | None = field(default=None, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def start(self) -> "LeaseKeeper":
        """Count the lease as fresh from now and start renewing it."""
        self._deadline = time.monotonic() + self.ttl
        self._thread = threading.Thread(
            target=self._renew_forever, name=f"lease-{self.entity}", daemon=True
        )
        self._thread.start()
        return self

    def _renew_forever(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            self.renew()
            if self._lost is not None:
                return

    def renew(self) -> None:
        """Extend the lease now (the thread does this every quarter of its life)."""
        asked = time.monotonic()
        try:
            self.store.renew_lease(self.entity, self.holder, self.ttl)
        except LeaseLostError as exc:
            self._lost = exc
            log.error("%s", exc)
            return
        except Exception as exc:  # the database is unreachable: keep the old deadline
            log.warning("could not renew the lease on '%s': %s", self.entity, exc)
            return
        self._deadline = asked + self.ttl

    def check(self) -> None:
        """Raise unless the lease is surely still this run's (with a margin of a tenth).

        Raises:
            LeaseLostError: it was taken over, or it may have expired.
        """
        if self._lost is not None:
            raise LeaseLostError(str(self._lost))
        if time.monotonic() > self._deadline - self.ttl / 10:
            raise LeaseLostError(
                f"run {self.holder} may have lost its lease on '{self.entity}' (not renewed "
                f"for {self.ttl:.0f} s: the process was stopped or the database unreachable); "
                "it stops sending so that a newer run cannot be overwritten"
            )

    def stop(self) -> None:
        """Stop renewing (the lease itself is released with the batch)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


@dataclass(frozen=True)
class RunInfo:
    """What the orchestrator tells a run's first step about the run."""

    run_id: str
    partition_key: str | None = None
    day_start: datetime | None = None
    """Start of the run's daily window (its partition); ``deletes: daily`` checks once in it."""
    run_status: RunStatus | None = None
    lease_seconds: float = LEASE_SECONDS


@dataclass(frozen=True)
class OpenBatch:
    """A running batch and the lease that guards it."""

    batch_id: int
    entity: str
    run_id: str
    keeper: LeaseKeeper | None


def holder_dead(lease: Lease, run_status: RunStatus | None) -> bool:
    """Whether a lease's holder is known to be dead before its lease expires.

    Its process on this host is gone, or the orchestrator says its run ended.
    """
    if process_gone(lease):
        return True
    status = run_status(lease.holder) if run_status is not None else None
    return status in FINISHED_RUN_STATUSES


def open_batch(
    store: StateStore,
    entity: str,
    run_id: str,
    mode: str,
    *,
    partition_key: str | None = None,
    mapping_version: int | None = None,
    run_status: RunStatus | None = None,
    lease_seconds: float = LEASE_SECONDS,
) -> OpenBatch:
    """Take the entity's lease, close dead batches, record a running batch.

    Raises:
        LeaseHeldError: a live run of the entity holds the lease (nothing recorded).
    """
    acquired = store.acquire_lease(
        entity, run_id, lease_seconds, is_dead=lambda lease: holder_dead(lease, run_status)
    )
    try:
        if acquired.previous is not None:
            log.warning(
                "run %s took over the expired lease of run %s on '%s'",
                run_id,
                acquired.previous.holder,
                entity,
            )
        close_dead_batches(store, run_status, entity=entity, keep_run=run_id)
        batch_id = store.start_batch(
            entity=entity,
            run_id=run_id,
            mode=mode,
            partition_key=partition_key,
            mapping_version=mapping_version,
        )
        store.attach_lease_batch(entity, run_id, batch_id)
    except BaseException:
        store.release_lease(entity, run_id)
        raise
    keeper = LeaseKeeper(store, entity, run_id, lease_seconds).start()
    return OpenBatch(batch_id, entity, run_id, keeper)


def open_run_batch(
    store: StateStore,
    cfg: EntityConfig,
    run: RunInfo,
    mode: str,
    partition_key: str | None = None,
) -> OpenBatch:
    """:func:`open_batch` for a run: the entity's mapping version registered, the run's lease.

    ``partition_key`` overrides the run's (a background run names its night).
    """
    version = store.register_mapping(cfg.name, mapping_identity(cfg))
    return open_batch(
        store,
        cfg.name,
        run.run_id,
        mode,
        partition_key=partition_key or run.partition_key,
        mapping_version=version,
        run_status=run.run_status,
        lease_seconds=run.lease_seconds,
    )


def finish_batch(
    store: StateStore,
    batch: OpenBatch,
    status: str,
    metrics: dict[str, int],
    *,
    watermark_from: int | None,
    watermark_to: int | None,
    error: str | None = None,
    watermark_cursor: str | None = None,
) -> None:
    """Close the batch (succeeded, paused, skipped; failed when ``error``) and release the lease."""
    if batch.keeper is not None:
        batch.keeper.stop()
    store.finish_batch(
        batch.batch_id,
        status=status,
        metrics=metrics,
        watermark_from=watermark_from,
        watermark_to=watermark_to,
        error=error,
        error_kind="permanent" if error and status == "failed" else None,
        lease_holder=batch.run_id,
        watermark_cursor=watermark_cursor,
    )


def fail_batch(
    store: StateStore,
    batch: OpenBatch,
    exc: BaseException,
    metrics: dict[str, int] | None = None,
    watermark_from: int | None = None,
) -> bool:
    """Close the batch as failed with the error and its kind; release the lease.

    Returns:
        Whether the batch was still running (False: it was closed already).
    """
    if batch.keeper is not None:
        batch.keeper.stop()
    if store.get_batch(batch.batch_id)["status"] != "running":
        store.release_lease(batch.entity, batch.run_id)
        return False
    store.finish_batch(
        batch.batch_id,
        status="failed",
        metrics=metrics,
        watermark_from=watermark_from,
        watermark_to=None,
        error=f"{type(exc).__name__}: {exc}"[:2000],
        error_kind=error_kind(exc),
        lease_holder=batch.run_id,
    )
    return True


def abandon_batch(store: StateStore, batch_id: int, reason: str, kind: str = "transient") -> bool:
    """Close a batch whose run ended without closing it; whether it was still running."""
    return store.abandon_batch(batch_id, reason, kind)


def close_dead_batches(
    store: StateStore,
    run_status: RunStatus | None,
    *,
    entity: str | None = None,
    keep_run: str | None = None,
    now: datetime | None = None,
) -> list[int]:
    """Abandon running batches whose run is over.

    A run is over when the orchestrator says it finished, or when it no longer
    holds a live lease on its entity.

    Args:
        store: the state store.
        run_status: the orchestrator's view of a run (None: judge by leases only).
        entity: only this entity's batches (default: all).
        keep_run: a run that is surely alive (the caller's own).
        now: the time to judge leases by (default: now).

    Returns:
        The ids of the batches closed.
    """
    now = now or utcnow()
    leases = {lease.entity: lease for lease in store.list_leases()}
    closed = []
    for batch in store.running_batches(entity):
        run_id = batch["run_id"]
        if run_id == keep_run:
            continue
        status = run_status(run_id) if run_status is not None else None
        lease = leases.get(batch["entity"])
        alive = (
            lease is not None
            and lease.holder == run_id
            and lease.expires_at > now
            and not process_gone(lease)
        )
        if status in FINISHED_RUN_STATUSES:
            reason = f"run {run_id} ended ({status.lower()}) without closing its batch"
        elif not alive:
            reason = f"run {run_id} {LEASE_GONE} on '{batch['entity']}'"
        else:
            continue
        if abandon_batch(store, batch["id"], reason):
            closed.append(batch["id"])
    return closed


def fail_batch_of_run(
    store: StateStore, run_id: str, error: str, error_class: str | None = None
) -> list[int]:
    """Close the running batches of a run the orchestrator saw fail; their ids.

    The kind comes from the error's class when it is one of SyncFlow's, else
    the run is taken to have died (transient: a later run may well succeed).
    """
    kind = kind_of_class(error_class) if error_class else "transient"
    closed = []
    for batch in store.running_batches():
        if batch["run_id"] == run_id and abandon_batch(store, batch["id"], error, kind):
            closed.append(batch["id"])
    return closed
