"""A wave's ingest request bodies, built a chunk ahead of the senders.

One vectorized encode-and-join per chunk of batches (records to JSON lines,
lines to bodies, bodies to bytes) costs far less than one per batch. A builder
thread keeps the next chunk ready while the senders work through the current
one, so no sender waits for an encode and the hub never idles for want of a
request; only the chunks in flight and the one ahead are held in memory.
Chunks start small and double up to ``per_chunk`` batches: the first request
goes out after one small encode, not after a full chunk's (~0.1 s for 50k
records), and each chunk is built in less time than the one before takes to send.
"""

import threading
from bisect import bisect_right
from types import TracebackType

import polars as pl

from syncflow_dagster.stages.encode import LINE
from syncflow_dagster.stages.resolve import BLOCKED

Bodies = list[tuple[bytes, int]]


class BatchBodies:
    """Request bodies of a wave's batches; use as a context manager (it owns a thread).

    Args:
        rows: the wave's rows, in sending order.
        line: the expression that gives a row's ingest line.
        batch_size: records per batch.
        id_prefix: ``batch_id`` of batch ``i`` is ``{id_prefix}-{i}``.
        per_chunk: batches encoded together (the first chunks are smaller).
        ahead: chunks built beyond the last one asked for.
        first_chunk: batches in the first chunk; each next one doubles, up to ``per_chunk``.
    """

    def __init__(
        self,
        rows: pl.DataFrame,
        line: pl.Expr,
        batch_size: int,
        id_prefix: str,
        per_chunk: int = 50,
        ahead: int = 1,
        first_chunk: int = 2,
    ):
        self._rows = rows
        self._line = line
        self._batch_size = batch_size
        self._id_prefix = id_prefix
        self._ahead = ahead
        self.batches = -(-rows.height // batch_size)
        self._starts = chunk_starts(self.batches, per_chunk, first_chunk)
        self._chunk_count = len(self._starts) - 1
        self._ready: dict[int, Bodies] = {}
        self._uses: dict[int, int] = {}
        self._wanted = 0
        self._closed = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._builder = threading.Thread(target=self._run, name=f"bodies-{id_prefix}", daemon=True)
        self._builder.start()

    def __enter__(self) -> "BatchBodies":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _build(self, chunk: int) -> Bodies:
        first, last = self._starts[chunk], self._starts[chunk + 1]
        rows = self._rows.slice(first * self._batch_size, (last - first) * self._batch_size)
        grouped = (
            rows.select(
                self._line.alias(LINE),
                (pl.int_range(pl.len(), dtype=pl.Int64) // self._batch_size + first).alias("_b"),
                BLOCKED,
            )
            .filter(~pl.col(BLOCKED))
            .group_by("_b", maintain_order=True)
            .agg(pl.col(LINE).str.join(","), pl.len().alias("_n"))
        )
        framed = grouped.select(
            pl.concat_str(
                pl.lit(f'{{"batch_id":"{self._id_prefix}-'),
                pl.col("_b").cast(pl.String),
                pl.lit('","records":['),
                pl.col(LINE),
                pl.lit("]}"),
            ).cast(pl.Binary),
            "_n",
        )
        built = dict(
            zip(
                grouped.get_column("_b").to_list(),
                zip(framed.to_series(0).to_list(), framed.to_series(1).to_list(), strict=True),
                strict=True,
            )
        )
        # A batch whose every record waits for a parent has nothing to send.
        return [built.get(b, (b"", 0)) for b in range(first, last)]

    def _run(self) -> None:
        try:
            for chunk in range(self._chunk_count):
                with self._cond:
                    while chunk > self._wanted + self._ahead and not self._closed:
                        self._cond.wait()
                    if self._closed:
                        return
                built = self._build(chunk)  # polars releases the GIL meanwhile
                with self._cond:
                    self._ready[chunk] = built
                    self._uses[chunk] = len(built)
                    self._cond.notify_all()
        except BaseException as exc:
            with self._cond:
                self._error = exc
                self._cond.notify_all()

    def body(self, i: int) -> tuple[bytes, int]:
        """Batch ``i``'s request body and its record count (each batch is asked for once)."""
        chunk = bisect_right(self._starts, i) - 1
        at = i - self._starts[chunk]
        with self._cond:
            if chunk > self._wanted:
                self._wanted = chunk
                self._cond.notify_all()
            while chunk not in self._ready:
                if self._error is not None:
                    raise RuntimeError("building the ingest bodies failed") from self._error
                self._cond.wait()
            bodies = self._ready[chunk]
            self._uses[chunk] -= 1
            if self._uses[chunk] == 0:
                del self._ready[chunk], self._uses[chunk]
        return bodies[at]

    def close(self) -> None:
        """Stop building and wait for the builder."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._builder.join()


def chunk_starts(batches: int, per_chunk: int, first_chunk: int) -> list[int]:
    """The first batch of each chunk, and ``batches`` at the end.

    Sizes double from ``first_chunk`` up to ``per_chunk``: ``chunk_starts(200, 50, 2)``
    is ``[0, 2, 6, 14, 30, 62, 112, 162, 200]``.
    """
    starts, start, size = [], 0, max(1, min(first_chunk, per_chunk))
    while start < batches:
        starts.append(start)
        start += size
        size = min(2 * size, per_chunk)
    return [*starts, batches]
