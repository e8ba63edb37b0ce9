"""Identity stage: BK_HASH (xxHash3-128 of the business key) and DATA_HASH (BLAKE3 of the record).

Both are computed vectorized with polars-hash over the canonical bytes specified in
docs/IDENTITY.md. The expression builders compose into other stages; the frame
functions add the checks that make the canonical bytes unambiguous and raise on input
the earlier stages should never let through.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import polars as pl
import polars.selectors as cs
from polars._typing import PolarsDataType
from polars_hash import CryptographicHashingNameSpace, NonCryptographicHashingNameSpace

from syncflow_dagster.stages.canonical import canonical_text_expr, column_expr, non_finite_expr

UNIT_SEPARATOR = "\x1f"
"""Joins entity and key values (BK) and a field name and its value (DATA)."""
RECORD_SEPARATOR = "\x1e"
"""Joins the fields of a record (DATA)."""
NULL_MARKER = "\x00"
"""Stands in for a null value (DATA); no value's canonical text contains it."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DATA_FORBIDDEN = "[\x00\x1e\x1f]"

Schema = Mapping[str, PolarsDataType]


def bk_hash_expr(entity: str, key_columns: Sequence[str], schema: Schema) -> pl.Expr:
    """Build the BK_HASH expression: 32 lowercase hex chars, named ``bk_hash``.

    Canonical bytes: UTF-8 of ``entity US key_1 US ... US key_n`` (US = U+001F), each
    key value in its canonical text form. A row with a null key value, or a NaN or
    infinite float, gets a null hash; :func:`with_bk_hash` raises on those instead.

    Args:
        entity: The entity name (no control characters).
        key_columns: The business-key columns, in the entity's configured order.
        schema: Dtypes of at least the key columns.

    Raises:
        ValueError: Bad entity name, no key columns, or a key column missing from schema.
        TypeError: A key column's dtype has no canonical text form.
    """
    _check_name(entity, "entity name")
    if not key_columns:
        raise ValueError(f"entity {entity!r}: the business key needs at least one column")
    _require(schema, key_columns, f"business key of {entity!r}")
    texts = [canonical_text_expr(column, schema[column]) for column in key_columns]
    joined = pl.concat_str([pl.lit(entity), *texts], separator=UNIT_SEPARATOR)
    digest = NonCryptographicHashingNameSpace(joined).xxh3_128(return_binary=True, byte_order="big")
    return _null_if_non_finite(digest.bin.encode("hex"), key_columns, schema).alias("bk_hash")


def data_hash_expr(fields: Sequence[str], schema: Schema) -> pl.Expr:
    """Build the DATA_HASH expression: 64 lowercase hex chars, named ``data_hash``.

    Canonical bytes: UTF-8 of the fields sorted by name (code point order), each as
    ``name US value`` and joined by RS (U+001E); a null value is written as NUL
    (U+0000). The order of ``fields`` does not matter. A row with a NaN or infinite
    float gets a null hash; :func:`with_data_hash` raises instead.

    Args:
        fields: The mapped (target) field names to cover.
        schema: Dtypes of at least those fields.

    Raises:
        ValueError: No fields, duplicates, a name with control characters, or a field
            missing from schema.
        TypeError: A field's dtype has no canonical text form.
    """
    if not fields:
        raise ValueError("DATA_HASH needs at least one field")
    duplicates = sorted({name for name in fields if list(fields).count(name) > 1})
    if duplicates:
        raise ValueError(f"DATA_HASH fields listed twice: {duplicates}")
    for name in fields:
        _check_name(name, "field name")
    _require(schema, fields, "DATA_HASH")
    parts: list[pl.Expr] = []
    for position, name in enumerate(sorted(fields)):
        prefix = (RECORD_SEPARATOR if position else "") + name + UNIT_SEPARATOR
        parts.append(pl.lit(prefix))
        parts.append(canonical_text_expr(name, schema[name]).fill_null(pl.lit(NULL_MARKER)))
    digest = CryptographicHashingNameSpace(pl.concat_str(parts)).blake3()
    return _null_if_non_finite(digest, fields, schema).alias("data_hash")


def with_bk_hash(
    frame: pl.DataFrame, entity: str, key_columns: Sequence[str], out: str = "bk_hash"
) -> pl.DataFrame:
    """Return ``frame`` with a String column ``out`` holding each row's BK_HASH.

    Raises:
        ValueError: Besides :func:`bk_hash_expr`'s errors: a null key value, a NaN or
            infinite float, or a String key value containing U+001F (normalized strings
            never do; the message names the column, never the value).
        TypeError: A key column's dtype has no canonical text form.
    """
    expr = bk_hash_expr(entity, key_columns, frame.schema)
    _check_key_values(frame, entity, key_columns)
    return _add_columns(frame, [expr.alias(out)])


def with_data_hash(
    frame: pl.DataFrame, fields: Sequence[str], out: str = "data_hash"
) -> pl.DataFrame:
    """Return ``frame`` with a String column ``out`` holding each row's DATA_HASH.

    Raises:
        ValueError: Besides :func:`data_hash_expr`'s errors: a NaN or infinite float, or
            a String value containing U+0000, U+001E or U+001F (normalized strings never
            do; the message names the column, never the value).
        TypeError: A field's dtype has no canonical text form.
    """
    expr = data_hash_expr(fields, frame.schema)
    _check_data_values(frame, fields)
    return _add_columns(frame, [expr.alias(out)])


def with_identity(
    frame: pl.DataFrame,
    entity: str,
    key_columns: Sequence[str],
    fields: Sequence[str],
    *,
    bk_out: str = "bk_hash",
    data_out: str = "data_hash",
) -> pl.DataFrame:
    """Return ``frame`` with both hashes, computed in one pass.

    Same result and errors as :func:`with_bk_hash` followed by :func:`with_data_hash`.
    """
    bk = bk_hash_expr(entity, key_columns, frame.schema)
    data = data_hash_expr(fields, frame.schema)
    _check_key_values(frame, entity, key_columns)
    _check_data_values(frame, fields)
    return _add_columns(frame, [bk.alias(bk_out), data.alias(data_out)])


def _add_columns(frame: pl.DataFrame, exprs: list[pl.Expr]) -> pl.DataFrame:
    # The streaming engine hashes morsels on all cores (about twice as fast on two);
    # row order is kept.
    return frame.lazy().with_columns(exprs).collect(engine="streaming")


def _check_key_values(frame: pl.DataFrame, entity: str, key_columns: Sequence[str]) -> None:
    _refuse_nulls(frame, key_columns, f"business key of {entity!r}")
    _refuse_non_finite(frame, key_columns)
    _refuse_in_strings(frame, key_columns, UNIT_SEPARATOR, "U+001F")


def _check_data_values(frame: pl.DataFrame, fields: Sequence[str]) -> None:
    _refuse_non_finite(frame, fields)
    _refuse_in_strings(frame, fields, _DATA_FORBIDDEN, "U+0000, U+001E or U+001F")


def _null_if_non_finite(digest: pl.Expr, columns: Sequence[str], schema: Schema) -> pl.Expr:
    checks = [non_finite_expr(name, schema[name]) for name in columns]
    bad = [check for check in checks if check is not None]
    if not bad:
        return digest
    return pl.when(pl.any_horizontal(bad)).then(pl.lit(None, pl.String)).otherwise(digest)


def _check_name(name: str, what: str) -> None:
    if not name or _CONTROL.search(name):
        raise ValueError(f"{what} {name!r} must be non-empty and free of control characters")


def _require(schema: Schema, columns: Sequence[str], what: str) -> None:
    missing = [name for name in columns if name not in schema]
    if missing:
        raise ValueError(f"{what}: column(s) not in the frame: {missing}")


def _refuse_nulls(frame: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    counts = frame.select(cs.by_name(*columns).null_count()).row(0, named=True)
    bad = {name: count for name, count in counts.items() if count}
    if bad:
        raise ValueError(f"{what}: null key values (count per column): {bad}")


def _refuse_non_finite(frame: pl.DataFrame, columns: Sequence[str]) -> None:
    checks = {name: non_finite_expr(name, frame.schema[name]) for name in columns}
    exprs = [check.sum().alias(name) for name, check in checks.items() if check is not None]
    if not exprs:
        return
    bad = {name: count for name, count in frame.select(exprs).row(0, named=True).items() if count}
    if bad:
        raise ValueError(f"NaN or infinite floats have no canonical form (count per column): {bad}")


def _refuse_in_strings(
    frame: pl.DataFrame, columns: Sequence[str], pattern: str, what: str
) -> None:
    strings = [name for name in columns if frame.schema[name] == pl.String]
    if not strings:
        return
    exprs = [column_expr(name).str.contains(pattern).sum().alias(name) for name in strings]
    bad = {name: count for name, count in frame.select(exprs).row(0, named=True).items() if count}
    if bad:
        raise ValueError(
            f"values contain {what}, which the canonical form reserves (normalized strings have "
            f"no control characters; count per column): {bad}"
        )
