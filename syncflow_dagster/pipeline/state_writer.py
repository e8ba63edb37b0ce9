"""Writes the sync state of acknowledged records, on a thread of its own, in bulk.

The sender threads only report which batches the hub answered (and which
records it rejected); the writer picks the acknowledged rows out of the wave
with one vectorized filter per flush, so nothing per batch or per record runs
in Python. Records the delta classified as inserts are COPYed straight into
the state (the fast path); the rest are upserted; deletes are deleted.
"""

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import polars as pl

from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.stages.delta import DELETE, OP
from syncflow_dagster.stages.resolve import BLOCKED, NEW

STATE_COLUMNS = ["bk_hash", "data_hash", "rowversion", OP, NEW, BLOCKED]
# Fewer, bigger writes cost the database far less than many small ones (each
# sorted write touches fewer index pages per row); these sizes still let the
# writes overlap with the sending on big waves.
FLUSH_ROWS = 100_000
# Towards a wave's end the writes shrink (half of what is still unanswered,
# down to this), so that what is left to write after the last answer, which
# the run waits for, is small.
MIN_FLUSH_ROWS = 10_000


@dataclass
class _Wave:
    rows: pl.DataFrame
    batch_size: int
    sendable: int
    batches: list[int] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    pending: int = 0
    answered: int = 0

    def due(self, flush_rows: int, min_flush_rows: int) -> bool:
        """Whether the acknowledged rows waiting to be written should be written now."""
        unanswered = self.sendable - self.answered
        return self.pending >= max(min_flush_rows, min(flush_rows, unanswered // 2))


@dataclass(frozen=True)
class _Ack:
    wave: int
    index: int
    size: int
    rejected: tuple[int, ...]


class StateWriter:
    """Collects acknowledged batches and writes their state rows in bulk."""

    def __init__(
        self,
        store: StateStore,
        entity: str,
        batch_id: int,
        flush_rows: int = FLUSH_ROWS,
        min_flush_rows: int = MIN_FLUSH_ROWS,
    ):
        self._store = store
        self._entity = entity
        self._batch_id = batch_id
        self._flush_rows = flush_rows
        self._min_flush_rows = min_flush_rows
        self._waves: list[_Wave] = []
        self._queue: queue.Queue[_Ack | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"state-writer-{entity}", daemon=True
        )
        self._thread.start()

    def begin_wave(self, rows: pl.DataFrame, batch_size: int) -> int:
        """Register a wave's rows (``STATE_COLUMNS``), sent in batches of ``batch_size``."""
        sendable = rows.height - int(rows.get_column(BLOCKED).sum())
        self._waves.append(_Wave(rows.select(STATE_COLUMNS), batch_size, sendable))
        return len(self._waves) - 1

    def acknowledge(self, wave: int, index: int, size: int, rejected: tuple[int, ...]) -> None:
        """Batch ``index`` of ``wave`` was answered.

        ``size`` records went; ``rejected`` are the positions (in the wave) of those refused.
        """
        if self._error is not None:
            raise self._error
        self._queue.put(_Ack(wave, index, size, rejected))

    def _write(self, wave: _Wave) -> None:
        if not wave.batches:
            return
        position = pl.int_range(0, wave.rows.height, dtype=pl.Int64, eager=True)
        answered = (position // wave.batch_size).is_in(pl.Series(wave.batches).implode())
        answered = answered & ~wave.rows.get_column(BLOCKED)
        if wave.rejected:
            answered = answered & ~position.is_in(pl.Series(wave.rejected).implode())
        acked = wave.rows.filter(answered)
        wave.batches, wave.rejected, wave.pending = [], [], 0
        deletes = acked.filter(pl.col(OP) == DELETE)
        if deletes.height:
            self._store.delete_state(self._entity, deletes.get_column("bk_hash"))
        upserts = acked.filter(pl.col(OP) != DELETE)
        for new, group in upserts.partition_by(NEW, as_dict=True).items():
            self._store.upsert_state(
                self._entity,
                group.select("bk_hash", "data_hash", "rowversion"),
                self._batch_id,
                assume_new=bool(new[0]),
            )

    def _take(self) -> tuple[list[_Ack], bool]:
        """The answers waiting (at least one; all that came while the last write ran)."""
        acks, done = [], False
        item = self._queue.get()
        while True:
            if item is None:
                done = True
            else:
                acks.append(item)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return acks, done

    def _run(self) -> None:
        done = False
        try:
            while not done:
                acks, done = self._take()
                for ack in acks:
                    wave = self._waves[ack.wave]
                    wave.batches.append(ack.index)
                    wave.rejected.extend(ack.rejected)
                    wave.pending += ack.size - len(ack.rejected)
                    wave.answered += ack.size
                for wave in self._waves:
                    if done or wave.due(self._flush_rows, self._min_flush_rows):
                        self._write(wave)
        except BaseException as exc:
            self._error = exc
            while not done:
                done = self._queue.get() is None

    def close(self) -> None:
        """Write what is left and wait; raise the writer's failure, if any."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


@contextmanager
def state_writer(store: StateStore, entity: str, batch_id: int) -> Iterator[StateWriter]:
    """A writer that is always closed: a failure while sending still writes the acknowledged."""
    writer = StateWriter(store, entity, batch_id)
    try:
        yield writer
    finally:
        writer.close()
