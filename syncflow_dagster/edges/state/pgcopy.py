"""PostgreSQL COPY FROM STDIN of Polars frames, with no per-row Python.

Polars renders the frame as COPY text (hex hashes, integers), CSV (free text
such as JSON) or binary (the state rows: hex hashes, integers) into one buffer
that psycopg streams with ``cursor.copy()``. Reading back is :mod:`copyout`
and :mod:`binary`.
"""

import io
from collections.abc import Callable, Sequence

import polars as pl
import psycopg
from polars_hash import BytesNameSpace
from sqlalchemy.engine import Connection

BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no header extension
BINARY_TRAILER = b"\xff\xff"


def psycopg_connection(conn: Connection) -> psycopg.Connection:
    """The psycopg 3 connection under a SQLAlchemy connection (same transaction)."""
    driver = conn.connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise TypeError("the PostgreSQL state store needs the psycopg 3 driver")
    return driver


def to_copy_text(frame: pl.DataFrame) -> bytes:
    r"""Render a frame as COPY text format.

    Only for values with no tab, newline or backslash (hex, integers, escaped
    constants): no quoting is done. NULL is ``\\N``.
    """
    buf = io.BytesIO()
    frame.write_csv(
        buf, include_header=False, separator="\t", quote_style="never", null_value="\\N"
    )
    return buf.getvalue()


def to_copy_csv(frame: pl.DataFrame) -> bytes:
    """Render a frame as COPY CSV: NULL is an unquoted empty field, "" an empty string."""
    buf = io.BytesIO()
    frame.write_csv(buf, include_header=False, datetime_format="%Y-%m-%dT%H:%M:%S%.f%z")
    return buf.getvalue()


def hex_field(column: str, size: int) -> pl.Expr:
    """A binary COPY field of ``size`` bytes (``uuid``, ``bytea``) from a column of their hex.

    The column must hold exactly ``2 * size`` lowercase hex digits per row, no nulls
    (check it first: see ``frames.state_frame``).
    """
    return pl.lit(f"{size:08x}") + pl.col(column)


def int8_field(column: str) -> pl.Expr:
    """A binary COPY ``int8`` field, NULL where the column is null."""
    value = BytesNameSpace(pl.col(column).cast(pl.Int64)).to_be().bin.encode("hex")
    return pl.when(pl.col(column).is_null()).then(pl.lit("ffffffff")).otherwise("00000008" + value)


def constant_field(value: int, size: int) -> pl.Expr:
    """A binary COPY integer of ``size`` bytes (2: ``int2``, 8: ``int8``), the same in every row."""
    return pl.lit(f"{size:08x}{value % (1 << (8 * size)):0{2 * size}x}")


def to_copy_binary(fields: Sequence[pl.Expr]) -> Callable[[pl.DataFrame], bytes]:
    """A renderer of rows in COPY's binary format (without header and trailer).

    Each row is built as hex in one vectorized pass (field count, then each
    field's length and value) and the slice's hex decoded at once: the server
    then only copies bytes, where text COPY makes it parse every hash.
    """
    row = pl.concat_str([pl.lit(f"{len(fields):04x}"), *fields])

    def render(frame: pl.DataFrame) -> bytes:
        hexed = frame.select(row.str.join("", ignore_nulls=False)).item()
        if hexed is None:
            raise ValueError("a binary COPY field rendered as null")
        return bytes.fromhex(hexed)

    return render


def copy_in(
    conn: Connection,
    sql: str,
    frame: pl.DataFrame,
    render: Callable[[pl.DataFrame], bytes],
    chunk_rows: int = 100_000,
    header: bytes = b"",
    trailer: bytes = b"",
) -> None:
    """Stream ``frame`` into ``COPY … FROM STDIN``, rendered a slice at a time.

    The server parses one slice while Polars renders the next, and the rendered
    text never exists whole. ``header`` and ``trailer`` frame the stream (binary COPY).
    """
    with psycopg_connection(conn).cursor() as cursor, cursor.copy(sql) as copy:
        if header:
            copy.write(header)
        for start in range(0, frame.height, chunk_rows):
            copy.write(render(frame.slice(start, chunk_rows)))
        if trailer:
            copy.write(trailer)


def copy_in_binary(
    conn: Connection, sql: str, frame: pl.DataFrame, fields: Sequence[pl.Expr]
) -> None:
    """``copy_in`` in COPY's binary format; ``sql`` is ``COPY … FROM STDIN`` without options."""
    copy_in(
        conn,
        f"{sql} (FORMAT binary)",
        frame,
        to_copy_binary(fields),
        header=BINARY_HEADER,
        trailer=BINARY_TRAILER,
    )
