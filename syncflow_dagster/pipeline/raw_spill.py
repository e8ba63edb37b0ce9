"""The fetched records' raw form, moved to a temporary file once most records are past it.

Dead letters keep each failed record's raw form. Past the map step only the
hub can still reject a record, which is rare, yet the raw frame is one of the
largest things a run holds. So it is written to an uncompressed Arrow IPC file
on a background thread while normalize, validate and map run, and dropped from
memory after map; the few rows a dead letter needs are read back from the file.
The file goes when the spill is closed or garbage-collected.
"""

import shutil
import tempfile
import threading
import weakref
from pathlib import Path

import polars as pl

from syncflow_dagster.stages.failures import ROW


class RawSpill:
    """A raw frame being (or having been) written to a temporary Arrow IPC file."""

    def __init__(self, raw: pl.DataFrame) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="syncflow-raw-"))
        self._path = self._dir / "raw.arrow"
        self._schema = raw.schema
        self._error: BaseException | None = None
        self._finalizer = weakref.finalize(self, shutil.rmtree, self._dir, True)
        self._thread = threading.Thread(
            target=self._write, args=(raw,), name="raw-spill", daemon=True
        )
        self._thread.start()

    def _write(self, raw: pl.DataFrame) -> None:
        try:
            raw.write_ipc(self._path, compression="uncompressed")
        except BaseException as exc:  # raised to whoever waits for the spill
            self._error = exc

    def wait(self) -> None:
        """Block until the file is complete.

        Raises:
            OSError: when it could not be written (e.g. no space left).
        """
        self._thread.join()
        if self._error is not None:
            raise self._error

    def rows(self, ids: pl.Series) -> pl.DataFrame:
        """The raw records with these ``_row`` ids."""
        self.wait()
        if ids.len() == 0:
            return pl.DataFrame(schema=self._schema)
        wanted = ids.cast(self._schema[ROW]).implode()
        return pl.scan_ipc(self._path).filter(pl.col(ROW).is_in(wanted)).collect()

    def close(self) -> None:
        """Remove the file (waiting for the writer first)."""
        self._thread.join()
        self._finalizer()
