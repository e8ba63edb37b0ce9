"""Column types that let the rest of SyncFlow speak lowercase hex and aware UTC.

BK_HASH (xxh3-128) is stored as ``uuid`` on PostgreSQL and a 16-byte BLOB on
SQLite; DATA_HASH (BLAKE3) as ``bytea`` / a 32-byte BLOB. At the edges both are
lowercase hex strings. Uppercase or otherwise malformed hex is *rejected*
(:class:`HashFormatError`), never normalized: BK_HASH is the hub's
``external_id``, so a differently-cased key upstream is a bug to surface, not
to hide.
"""

import re
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

import polars as pl
from sqlalchemy import DateTime, LargeBinary
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

BK_HASH_BYTES = 16
DATA_HASH_BYTES = 32


class HashFormatError(ValueError):
    """A hash is not the expected number of lowercase hex characters."""


def _pattern(nbytes: int) -> str:
    return f"^[0-9a-f]{{{2 * nbytes}}}$"


def bad_hex(column: str, nbytes: int) -> pl.Expr:
    """How many values of ``column`` are null or not lowercase hex of ``nbytes`` bytes."""
    return (~pl.col(column).str.contains(_pattern(nbytes))).fill_null(True).sum()


_SCALAR = {n: re.compile(_pattern(n)) for n in (BK_HASH_BYTES, DATA_HASH_BYTES)}


def hex_to_bytes(value: object, nbytes: int, what: str) -> bytes:
    """Decode one lowercase hex hash, rejecting anything else."""
    if not isinstance(value, str) or not _SCALAR[nbytes].match(value):
        raise HashFormatError(
            f"{what} must be {2 * nbytes} lowercase hex characters, got {value!r:.80}"
        )
    return bytes.fromhex(value)


def check_hex(series: pl.Series, nbytes: int, what: str, *, nullable: bool = False) -> None:
    """Vectorized check that every value of ``series`` is a lowercase hex hash.

    Raises:
        HashFormatError: naming the column, how many values are bad and the first one.
    """
    ok = series.str.contains(_pattern(nbytes))
    bad = ~ok if nullable else (~ok).fill_null(True)
    if bad.any():
        first = series.filter(bad).head(1).to_list()[0]
        raise HashFormatError(
            f"{what}: {bad.sum()} value(s) are not {2 * nbytes} lowercase hex characters "
            f"(first: {first!r:.80})"
        )


class _HexHash(TypeDecorator[str]):
    """A fixed-size hash, hex at the edges, raw bytes in the database."""

    impl = LargeBinary
    cache_ok = True
    nbytes: ClassVar[int]

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        """Hex in, bytes to the driver."""
        if value is None:
            return None
        return hex_to_bytes(value, self.nbytes, type(self).__name__)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        """Bytes from the driver, hex out."""
        if value is None:
            return None
        return bytes(value).hex()


class BkHash(_HexHash):
    """BK_HASH: ``uuid`` on PostgreSQL, 16-byte BLOB elsewhere."""

    nbytes = BK_HASH_BYTES
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """``uuid`` on PostgreSQL, BLOB elsewhere."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.UUID(as_uuid=True))
        return dialect.type_descriptor(LargeBinary(BK_HASH_BYTES))

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        """Hex in, ``uuid.UUID`` (PostgreSQL) or bytes to the driver."""
        raw = super().process_bind_param(value, dialect)
        if raw is not None and dialect.name == "postgresql":
            return uuid.UUID(bytes=raw)
        return raw

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        """``uuid.UUID`` or bytes from the driver, hex out."""
        if isinstance(value, uuid.UUID):
            return value.hex
        return super().process_result_value(value, dialect)


class DataHash(_HexHash):
    """DATA_HASH: ``bytea`` on PostgreSQL, 32-byte BLOB elsewhere."""

    nbytes = DATA_HASH_BYTES
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """``bytea`` on PostgreSQL, BLOB elsewhere."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.BYTEA())
        return dialect.type_descriptor(LargeBinary(DATA_HASH_BYTES))


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that goes in aware and comes out aware, in UTC, on every database.

    Naive datetimes are rejected: a wall-clock time without a zone is ambiguous.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Aware in; UTC to the driver (naive UTC on SQLite, which has no zones)."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime (UTC)")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Aware UTC out."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
