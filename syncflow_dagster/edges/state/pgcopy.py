"""PostgreSQL COPY FROM STDIN of Polars frames, with no per-row Python.

Polars renders the frame as COPY text (hex hashes, integers) or CSV (free text
such as JSON) into one buffer that psycopg streams with ``cursor.copy()``.
Reading back is :mod:`copyout` and :mod:`binary`.
"""

import io
from collections.abc import Callable

import polars as pl
import psycopg
from sqlalchemy.engine import Connection


def psycopg_connection(conn: Connection) -> psycopg.Connection:
    """The psycopg 3 connection under a SQLAlchemy connection (same transaction)."""
    driver = conn.connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise TypeError("the PostgreSQL state store needs the psycopg 3 driver")
    return driver


def copy_text_literal(value: str) -> str:
    """Escape a constant for COPY's text format."""
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


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


def copy_in(
    conn: Connection,
    sql: str,
    frame: pl.DataFrame,
    render: Callable[[pl.DataFrame], bytes],
    chunk_rows: int = 100_000,
) -> None:
    """Stream ``frame`` into ``COPY … FROM STDIN``, rendered a slice at a time.

    The server parses one slice while Polars renders the next, and the rendered
    text never exists whole.
    """
    with psycopg_connection(conn).cursor() as cursor, cursor.copy(sql) as copy:
        for start in range(0, frame.height, chunk_rows):
            copy.write(render(frame.slice(start, chunk_rows)))
