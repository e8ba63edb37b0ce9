"""Binary COPY of fixed-width columns into a Polars frame, parsed while it streams.

``COPY (SELECT …) TO STDOUT (FORMAT binary)`` of ``uuid``, 32-byte ``bytea``,
``int8`` and ``bool`` columns costs the server only memcpys, and every row has
the same size, so Polars can cut the stream into rows without looking at them:
one flat UInt8 series, reshaped into fixed-size rows, each column a binary
slice that is hex-encoded or reinterpreted as a big-endian Int64. NULL would
change a row's size: select ``coalesce(x, 0), x IS NULL`` instead.

Chunks are parsed on a worker thread (Polars releases the GIL) while the main
thread keeps draining libpq.
"""

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from typing import Literal

import polars as pl
from sqlalchemy.engine import Connection

from syncflow_dagster.edges.state.copyout import copy_out_stream
from syncflow_dagster.edges.state.pgcopy import BINARY_HEADER, BINARY_TRAILER

SIGNATURE = BINARY_HEADER[:11]
_HEADER = len(BINARY_HEADER)  # signature (11) + flags (4) + header extension length (4)
_TRAILER = BINARY_TRAILER  # int16 -1
_CHUNK_BYTES = 8 << 20
_DTYPES = {"hex": pl.String(), "int8": pl.Int64(), "bool": pl.Boolean()}


@dataclass(frozen=True)
class Field:
    """One fixed-width, NOT NULL column: ``hex`` (uuid/bytea), ``int8`` or ``bool``."""

    name: str
    kind: Literal["hex", "int8", "bool"]
    size: int


def row_size(fields: Sequence[Field]) -> int:
    """Bytes per row: field count (2) + per field a length (4) and the value."""
    return 2 + sum(4 + f.size for f in fields)


def parse_rows(body: bytes, fields: Sequence[Field]) -> pl.DataFrame:
    """Parse whole rows (no header, no trailer) into one column per field.

    Raises:
        ValueError: if a row does not have the expected layout.
    """
    size = row_size(fields)
    nrows = len(body) // size
    if nrows == 0 or len(body) % size:
        if body:
            raise ValueError(f"{len(body)} bytes are not whole {size}-byte rows")
        return pl.DataFrame(schema={f.name: _DTYPES[f.kind] for f in fields})
    rows = (
        pl.Series("r", [body], dtype=pl.Binary)
        .bin.reinterpret(dtype=pl.Array(pl.UInt8, len(body)))
        .explode()
        .reshape((nrows, size))
        .cast(pl.List(pl.UInt8))
        .cast(pl.Binary)
        .to_frame("r")
    )
    row = pl.col("r")
    checks = [row.bin.slice(0, 2) == len(fields).to_bytes(2, "big")]
    columns = []
    offset = 2
    for f in fields:
        checks.append(row.bin.slice(offset, 4) == f.size.to_bytes(4, "big"))
        value = row.bin.slice(offset + 4, f.size)
        if f.kind == "hex":
            columns.append(value.bin.encode("hex").alias(f.name))
        elif f.kind == "int8":
            columns.append(value.bin.reinterpret(dtype=pl.Int64, endianness="big").alias(f.name))
        else:
            columns.append((value == b"\x01").alias(f.name))
        offset += 4 + f.size
    if not rows.select(pl.all_horizontal(checks).all()).item():
        raise ValueError("binary COPY rows do not have the expected column layout")
    return rows.select(columns)


def read_binary(conn: Connection, select_sql: str, fields: Sequence[Field]) -> pl.DataFrame:
    """Run ``COPY (select_sql) TO STDOUT (FORMAT binary)`` and parse it into a frame.

    Raises:
        ValueError: if the stream is not a binary COPY of ``fields``.
        psycopg.Error: if the query fails.
    """
    size = row_size(fields)
    sql = f"COPY ({select_sql}) TO STDOUT (FORMAT binary)"
    parts: list[Future[pl.DataFrame]] = []
    carry = b""
    started = False
    stream = copy_out_stream(conn, sql, _CHUNK_BYTES)
    # closing(): a parse error mid-stream cancels the COPY at once, before the rollback.
    with ThreadPoolExecutor(1, thread_name_prefix="copy-parse") as pool, closing(stream):
        for chunk in stream:
            data = carry + chunk if carry else chunk
            if not started:
                if len(data) < _HEADER:
                    carry = data
                    continue
                if not data.startswith(SIGNATURE):
                    raise ValueError("not a binary COPY stream")
                data = data[_HEADER:]
                started = True
            whole = len(data) - len(data) % size
            if whole:
                parts.append(pool.submit(parse_rows, data[:whole], fields))
            carry = data[whole:]
        if not started or carry != _TRAILER:
            raise ValueError("binary COPY stream is truncated or not made of whole rows")
        frames = [part.result() for part in parts]
    if not frames:
        return parse_rows(b"", fields)
    return pl.concat(frames, rechunk=False) if len(frames) > 1 else frames[0]
