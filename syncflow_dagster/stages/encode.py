"""Encode records as ScheduleHub ingest records (one JSON object per record).

Vectorized: the ``data`` object comes from polars' struct JSON encoder, the
envelope from string concatenation, so no record passes through Python.
"""

from collections.abc import Sequence

import polars as pl

LINE = "_line"


def _quoted(expr: pl.Expr) -> pl.Expr:
    return pl.lit('"') + expr + pl.lit('"')


def parents_json(parents: Sequence[tuple[str, str]]) -> pl.Expr:
    """The ``parents`` array from (hub entity, column of parent BK_HASH) pairs; nulls skipped."""
    if not parents:
        return pl.lit("[]")
    refs = [
        pl.when(pl.col(col).is_not_null()).then(
            pl.lit(f'{{"entity":"{entity}","external_id":"') + pl.col(col) + pl.lit('"}')
        )
        for entity, col in parents
    ]
    return pl.lit("[") + pl.concat_str(refs, separator=",", ignore_nulls=True) + pl.lit("]")


def upsert_line(fields: Sequence[str], parents: Sequence[tuple[str, str]]) -> pl.Expr:
    """An upsert record: external_id, op, data (the fields), data_hash, parents."""
    data = pl.struct([pl.col(f) for f in fields]).struct.json_encode()
    return pl.concat_str(
        [
            pl.lit('{"external_id":'),
            _quoted(pl.col("bk_hash")),
            pl.lit(',"op":"upsert","data":'),
            data,
            pl.lit(',"data_hash":'),
            _quoted(pl.col("data_hash")),
            pl.lit(',"parents":'),
            parents_json(parents),
            pl.lit("}"),
        ]
    ).alias(LINE)


def delete_line() -> pl.Expr:
    """A delete record for the row's bk_hash."""
    return (pl.lit('{"external_id":"') + pl.col("bk_hash") + pl.lit('","op":"delete"}')).alias(LINE)
