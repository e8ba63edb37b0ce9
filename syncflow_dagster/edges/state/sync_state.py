"""erp_sync_state: one row per record the hub acknowledged — the delta's memory.

The hot path (millions of rows per entity): :mod:`pg_state` (COPY) on
PostgreSQL, :mod:`sqlite_state` (executemany) on SQLite. Every write is one
transaction; rows are validated first (lowercase hex, one row per key) and
written in key order.
"""

import polars as pl
from sqlalchemy import func, select

from syncflow_dagster.edges.state import pg_state, sqlite_state
from syncflow_dagster.edges.state.base import StoreBase, as_keys
from syncflow_dagster.edges.state.frames import empty_state, state_frame
from syncflow_dagster.edges.state.tables import erp_sync_state, sync_entities


class SyncStateOps(StoreBase):
    """Load, upsert and delete per-record sync state."""

    def _entity_id(self, entity: str, create: bool = False) -> int | None:
        """The id that keys ``entity``'s state; None if it has none yet (unless ``create``).

        A new id is committed in a transaction of its own before any state uses
        it, so only ids that exist in ``sync_entities`` are ever cached.
        """
        if entity in self._entity_ids:
            return self._entity_ids[entity]
        find = select(sync_entities.c.id).where(sync_entities.c.name == entity)
        with self._read() as conn:
            found = conn.execute(find).scalar_one_or_none()
        if found is None and create:
            insert = self._insert(sync_entities).values(name=entity)
            with self._write() as conn:
                conn.execute(insert.on_conflict_do_nothing(index_elements=["name"]))
                found = conn.execute(find).scalar_one()
        if found is not None:
            self._entity_ids[entity] = int(found)
        return found

    def load_state(self, entity: str) -> pl.DataFrame:
        """All state of ``entity``: ``bk_hash`` (hex), ``data_hash`` (hex), ``rowversion``.

        Rows come in no particular order.
        """
        entity_id = self._entity_id(entity)
        if entity_id is None:
            return empty_state()
        with self._read() as conn:
            if self._pg:
                return pg_state.load(conn, entity_id)
            return sqlite_state.load(conn, entity_id)

    def load_versions(self, entity: str) -> pl.DataFrame:
        """Every key of ``entity`` with its rowversion: ``bk_hash`` (hex), ``rowversion``.

        The state without its data hashes, a third of the bytes: enough to settle
        records by rowversion and to find deletes; the few records left to
        compare by hash get theirs from :meth:`load_state_for`.
        """
        entity_id = self._entity_id(entity)
        if entity_id is None:
            return empty_state().drop("data_hash")
        with self._read() as conn:
            if self._pg:
                return pg_state.load(conn, entity_id, data_hash=False)
            return sqlite_state.load_versions(conn, entity_id)

    def load_state_for(self, entity: str, bk_hashes: pl.Series) -> pl.DataFrame:
        """State of the given keys only (absent keys are simply not in the result)."""
        keys = as_keys(bk_hashes)
        entity_id = self._entity_id(entity)
        if keys.is_empty() or entity_id is None:
            return empty_state()
        with self._read() as conn:
            if not self._pg:
                return sqlite_state.load(conn, entity_id, keys)
            with self._pg_keys(conn, keys) as staged:
                return pg_state.load(conn, entity_id, staged)

    def load_keys(self, entity: str) -> pl.Series:
        """Every BK_HASH of ``entity`` (hex), in no particular order."""
        entity_id = self._entity_id(entity)
        if entity_id is None:
            return pl.Series("bk_hash", [], dtype=pl.String)
        with self._read() as conn:
            if self._pg:
                return pg_state.load_keys(conn, entity_id)
            return sqlite_state.load_keys(conn, entity_id)

    def existing_keys(self, entity: str, bk_hashes: pl.Series) -> pl.Series:
        """The subset of ``bk_hashes`` that has state for ``entity``.

        On PostgreSQL, when the entity has at most twice as many keys as are
        asked about (a child entity's parents: 50k items for 1M work orders),
        all its keys are read and matched here: one scan instead of a primary
        key probe per key (0.19 s -> 0.04 s for 50k of 50k).
        """
        keys = as_keys(bk_hashes)
        entity_id = self._entity_id(entity)
        if keys.is_empty() or entity_id is None:
            return keys.clear()
        with self._read() as conn:
            if not self._pg:
                found = sqlite_state.load(conn, entity_id, keys).get_column("bk_hash")
            elif pg_state.has_at_most(conn, entity_id, 2 * keys.len()):
                found = pg_state.load_keys(conn, entity_id)
            else:
                with self._pg_keys(conn, keys) as staged:
                    found = pg_state.load_keys(conn, entity_id, staged)
        return keys.filter(keys.is_in(found.implode()))

    def keys_stamped_through(self, entity: str, batch_id: int) -> pl.Series:
        """BK_HASHes whose state was last written by batch ``batch_id`` or an earlier one."""
        stmt = select(erp_sync_state.c.bk_hash).where(
            erp_sync_state.c.entity_id == self._entity_id(entity),
            erp_sync_state.c.last_batch_id <= batch_id,
        )
        with self._read() as conn:
            keys = [row[0] for row in conn.execute(stmt)]
        return pl.Series("bk_hash", keys, dtype=pl.String)

    def has_at_most(self, entity: str, n: int) -> bool:
        """Whether ``entity`` has at most ``n`` state rows (reads no more than n + 1 of them)."""
        entity_id = self._entity_id(entity)
        if entity_id is None:
            return True
        some = (
            select(erp_sync_state.c.bk_hash)
            .where(erp_sync_state.c.entity_id == entity_id)
            .limit(n + 1)
            .subquery()
        )
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(some)).scalar_one()) <= n

    def count_state(self, entity: str) -> int:
        """How many records of ``entity`` have state."""
        stmt = select(func.count()).where(erp_sync_state.c.entity_id == self._entity_id(entity))
        with self._read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def upsert_state(
        self, entity: str, frame: pl.DataFrame, batch_id: int, assume_new: bool = False
    ) -> int:
        """Insert or update the state of acknowledged records, in one transaction.

        Args:
            entity: the entity.
            frame: ``bk_hash``, ``data_hash`` (lowercase hex) and ``rowversion``; one row per key.
            batch_id: the batch that got the hub's acknowledgement (``last_batch_id``).
            assume_new: the caller expects no key to have state yet (records the
                delta classified as inserts): on PostgreSQL they are COPYed straight
                in, falling back to the upsert if a key exists after all.

        Returns:
            The number of rows given (written, or already identical).

        Raises:
            ValueError: a missing column, a malformed hash or a repeated key; nothing is written.
        """
        rows = state_frame(frame)
        if rows.is_empty():
            return 0
        entity_id = self._entity_id(entity, create=True)
        assert entity_id is not None
        with self._write() as conn:
            if self._pg:
                pg_state.upsert(conn, entity, entity_id, rows, batch_id, assume_new)
            else:
                sqlite_state.upsert(conn, entity_id, rows, batch_id)
        return rows.height

    def delete_state(self, entity: str, bk_hashes: pl.Series) -> int:
        """Forget records (after the hub acknowledged their deletion).

        Returns:
            How many rows were deleted.
        """
        keys = as_keys(bk_hashes)
        entity_id = self._entity_id(entity)
        if keys.is_empty() or entity_id is None:
            return 0
        with self._write() as conn:
            if not self._pg:
                return sqlite_state.delete(conn, entity_id, keys)
            with self._pg_keys(conn, keys) as staged:
                return pg_state.delete(conn, entity, entity_id, staged)
