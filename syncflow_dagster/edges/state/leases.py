"""sync_leases: one run per entity at a time, whatever launched it.

A run takes its entity's lease before it opens a batch and renews it while it
works; it releases it when its batch closes. A holder that dies stops
renewing, its lease expires, and the next run takes it over (and closes the
dead holder's batch). A holder known to be dead sooner — its process on this
host is gone, or the orchestrator says its run ended — is taken over at once.
Times are the store's clock (UTC).
"""

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.exc import IntegrityError

from syncflow_dagster.edges.state.base import StoreBase, utcnow
from syncflow_dagster.edges.state.tables import sync_leases
from syncflow_dagster.errors import TransientError


@dataclass(frozen=True)
class Lease:
    """Who holds an entity, since when, until when."""

    entity: str
    holder: str
    holder_host: str | None
    holder_pid: int | None
    batch_id: int | None
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime


_COLUMNS = tuple(f.name for f in fields(Lease))


class LeaseHeldError(TransientError):
    """Another live run holds the entity; this run must not start."""

    def __init__(self, lease: Lease) -> None:
        super().__init__(
            f"another run is syncing '{lease.entity}': run {lease.holder} holds it since "
            f"{lease.acquired_at:%Y-%m-%d %H:%M:%S} UTC (its lease runs until "
            f"{lease.expires_at:%H:%M:%S} UTC unless renewed); two runs of one entity must "
            "never overlap — wait for it, or stop it in the Dagster UI"
        )
        self.lease = lease


class LeaseLostError(TransientError):
    """The run's lease expired or was taken over: it must stop sending at once."""


@dataclass(frozen=True)
class Acquired:
    """A lease just taken; ``previous`` is the expired lease it replaced, if any."""

    lease: Lease
    previous: Lease | None


HOST = socket.gethostname()


def process_gone(lease: Lease) -> bool:
    """Whether the lease's holder was a process on this host that no longer exists."""
    if lease.holder_host != HOST or lease.holder_pid is None:
        return False
    try:
        os.kill(lease.holder_pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by someone else
        return False
    return False


def _lease(row: object) -> Lease:
    mapping = row._mapping  # type: ignore[attr-defined]
    return Lease(**{c: mapping[c] for c in _COLUMNS})


class LeaseOps(StoreBase):
    """Take, renew, release and read entity leases."""

    def get_lease(self, entity: str) -> Lease | None:
        """The entity's lease row (live or expired), if any."""
        with self._read() as conn:
            row = conn.execute(select(sync_leases).where(sync_leases.c.entity == entity)).first()
        return None if row is None else _lease(row)

    def list_leases(self) -> list[Lease]:
        """Every lease row, by entity."""
        with self._read() as conn:
            return [_lease(r) for r in conn.execute(select(sync_leases).order_by("entity"))]

    def acquire_lease(
        self,
        entity: str,
        holder: str,
        ttl_seconds: float,
        now: datetime | None = None,
        is_dead: Callable[[Lease], bool] = process_gone,
    ) -> Acquired:
        """Take the entity's lease for ``holder``, or fail fast if a live run holds it.

        Args:
            entity: the entity to hold.
            holder: the run that holds it (its run id).
            ttl_seconds: how long the lease lives unless renewed.
            now: the time (default: now).
            is_dead: whether a current, unexpired holder is known to be dead
                (default: its process on this host is gone).

        Raises:
            LeaseHeldError: another holder's lease has not expired.
        """
        for _ in range(3):
            try:
                return self._acquire(entity, holder, ttl_seconds, now or utcnow(), is_dead)
            except IntegrityError:  # two first-ever acquisitions raced on the insert
                continue
        raise LeaseHeldError(self.get_lease(entity))  # type: ignore[arg-type]

    def _acquire(
        self,
        entity: str,
        holder: str,
        ttl: float,
        now: datetime,
        is_dead: Callable[[Lease], bool],
    ) -> Acquired:
        expires = now + timedelta(seconds=ttl)
        with self._write() as conn:
            stmt = select(sync_leases).where(sync_leases.c.entity == entity)
            row = conn.execute(stmt.with_for_update() if self._pg else stmt).first()
            current = None if row is None else _lease(row)
            if (
                current is not None
                and current.holder != holder
                and current.expires_at > now
                and not is_dead(current)
            ):
                raise LeaseHeldError(current)
            values = {
                "holder": holder,
                "holder_host": HOST,
                "holder_pid": os.getpid(),
                "batch_id": None,
                "acquired_at": now,
                "renewed_at": now,
                "expires_at": expires,
            }
            if current is None:
                conn.execute(sync_leases.insert().values(entity=entity, **values))
            else:
                conn.execute(
                    update(sync_leases).where(sync_leases.c.entity == entity).values(**values)
                )
        lease = Lease(entity=entity, **values)  # type: ignore[arg-type]
        expired = current if current is not None and current.holder != holder else None
        return Acquired(lease, expired)

    def attach_lease_batch(self, entity: str, holder: str, batch_id: int) -> None:
        """Name the batch the holder opened under its lease."""
        with self._write() as conn:
            conn.execute(
                update(sync_leases)
                .where(sync_leases.c.entity == entity, sync_leases.c.holder == holder)
                .values(batch_id=batch_id)
            )

    def renew_lease(
        self, entity: str, holder: str, ttl_seconds: float, now: datetime | None = None
    ) -> datetime:
        """Extend the holder's lease; returns its new expiry.

        Raises:
            LeaseLostError: the lease is gone or another run holds it now.
        """
        now = now or utcnow()
        expires = now + timedelta(seconds=ttl_seconds)
        with self._write() as conn:
            changed = conn.execute(
                update(sync_leases)
                .where(sync_leases.c.entity == entity, sync_leases.c.holder == holder)
                .values(renewed_at=now, expires_at=expires)
            ).rowcount
        if not changed:
            raise LeaseLostError(
                f"run {holder} lost its lease on '{entity}' (it expired and another run took it)"
            )
        return expires

    def release_lease(self, entity: str, holder: str, conn: Connection | None = None) -> bool:
        """Give the lease up (only the holder's own); whether it was held."""
        stmt = delete(sync_leases).where(
            sync_leases.c.entity == entity, sync_leases.c.holder == holder
        )
        if conn is not None:
            return bool(conn.execute(stmt).rowcount)
        with self._write() as own:
            return bool(own.execute(stmt).rowcount)
