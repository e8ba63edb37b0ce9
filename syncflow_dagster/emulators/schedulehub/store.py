"""The hub's store: live state in memory, optionally journaled to SQLite; safe across threads.

The server thread ingests and serves reads; tests read through the same object
from their own thread (``records``, ``count``, ``get``).
"""

import threading
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from syncflow_dagster.emulators.schedulehub.apply import Outcome, apply_batch
from syncflow_dagster.emulators.schedulehub.batch import Batch
from syncflow_dagster.emulators.schedulehub.fastlane import FastLane
from syncflow_dagster.emulators.schedulehub.journal import Journal
from syncflow_dagster.emulators.schedulehub.render import record_json
from syncflow_dagster.emulators.schedulehub.schemas import EntitySchema
from syncflow_dagster.emulators.schedulehub.state import EntityState, Row, link_rows


def utc_now() -> str:
    """The current time as ISO 8601 UTC with a Z, as stored in ``updated_at``."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class HubStore:
    """Every entity's records; ``db_path`` None keeps them in process memory only.

    Args:
        schemas: the entities the hub accepts, by name.
        db_path: a SQLite file (created if absent) that keeps what was ingested
            across restarts, or None.
    """

    def __init__(self, schemas: Mapping[str, EntitySchema], db_path: str | Path | None = None):
        self.schemas = dict(schemas)
        self._lock = threading.Lock()
        self._hub = {name: EntityState(name) for name in self.schemas}
        self._lanes = {name: FastLane(schema) for name, schema in self.schemas.items()}
        self._journal = Journal(str(db_path)) if db_path is not None else None
        if self._journal is not None:
            self._load(self._journal)

    def _load(self, journal: Journal) -> None:
        for entity, written, deleted in journal.replay():
            if entity not in self._hub:
                continue  # an entity the schema file no longer has
            rows = self._hub[entity].rows
            rows.update(written)
            for external_id in deleted:
                rows.pop(external_id, None)
        for state in self._hub.values():
            link_rows(self._hub, list(state.rows.values()), add=True)
        journal.compact({name: state.rows for name, state in self._hub.items()})

    def ingest(self, entity: str, batch: Batch, now: str | None = None) -> Outcome:
        """Apply a batch to a known entity; the change is journaled before this returns."""
        schema = self.schemas[entity]
        with self._lock:
            outcome = apply_batch(self._hub, schema, batch, now or utc_now())
            self._journal_outcome(entity, outcome)
        return outcome

    def ingest_fast(
        self, entity: str, body: bytes, now: str | None = None
    ) -> tuple[str, Sequence[str], Outcome] | None:
        """Apply a raw ingest body through the fast lane: batch_id, ids and outcome (all created).

        None when the lane does not take the batch; nothing is changed then, and
        the caller parses the body and calls :meth:`ingest`.
        """
        with self._lock:
            applied = self._lanes[entity].apply(self._hub, body, now or utc_now())
            if applied is None:
                return None
            self._journal_outcome(entity, applied[2])
        return applied

    def _journal_outcome(self, entity: str, outcome: Outcome) -> None:
        if self._journal is not None and (outcome.written_ids or outcome.deleted):
            self._journal.append(entity, outcome.written_ids, outcome.written_rows, outcome.deleted)

    def page(
        self, entity: str, after: str | None, limit: int
    ) -> tuple[list[tuple[str, Row]], str | None]:
        """Up to ``limit`` records with external_id above ``after``, and the next cursor."""
        with self._lock:
            state = self._hub[entity]
            ids = state.sorted_ids()
            start = bisect_right(ids, after) if after else 0
            chunk = ids[start : start + limit]
            page = [(external_id, state.rows[external_id]) for external_id in chunk]
        more = start + limit < len(ids)
        return page, (chunk[-1] if more and chunk else None)

    def row(self, entity: str, external_id: str) -> Row | None:
        """One stored record's row, or None."""
        with self._lock:
            return self._hub[entity].rows.get(external_id)

    def get(self, entity: str, external_id: str) -> dict[str, Any] | None:
        """One stored record as the contract's StoredRecord, or None."""
        row = self.row(entity, external_id)
        return None if row is None else record_json(external_id, row)

    def records(self, entity: str) -> list[dict[str, Any]]:
        """Every stored record of an entity, by external_id, as the contract's StoredRecord."""
        with self._lock:
            state = self._hub[entity]
            rows = [(external_id, state.rows[external_id]) for external_id in state.sorted_ids()]
        return [record_json(external_id, row) for external_id, row in rows]

    def count(self, entity: str) -> int:
        """How many records of the entity are stored."""
        with self._lock:
            return len(self._hub[entity].rows)

    def children(self, entity: str, external_id: str) -> int:
        """How many stored records name this record as parent."""
        with self._lock:
            return self._hub[entity].child_count(external_id)

    def close(self) -> None:
        """Close the SQLite file, if any."""
        with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None
