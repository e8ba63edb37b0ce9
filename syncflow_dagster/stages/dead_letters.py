"""Dead letters: a failed record with its stage, code, detail and every form it had.

The raw form is the record as fetched (text values), the normalized form the
typed values, the mapped form the target fields — each as JSON text, null
where the record never reached that stage.
"""

from collections.abc import Sequence

import polars as pl

from syncflow_dagster.stages.failures import ROW

DEAD_LETTER_SCHEMA = {
    ROW: pl.UInt32,
    "bk_hash": pl.String,
    "source_key": pl.String,
    "rowversion": pl.Int64,
    "stage": pl.String,
    "code": pl.String,
    "detail": pl.String,
    "raw": pl.String,
    "normalized": pl.String,
    "mapped": pl.String,
    "error_kind": pl.String,
}


def _json_of(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    cols = [c for c in frame.columns if not c.startswith("_") or c == ROW]
    data = [c for c in cols if c != ROW]
    return frame.select(pl.col(ROW), pl.struct(data).struct.json_encode().alias(name))


def empty_dead_letters() -> pl.DataFrame:
    """A dead-letter frame with no rows."""
    return pl.DataFrame(schema=DEAD_LETTER_SCHEMA)


def dead_letters(
    stage: str,
    failures: pl.DataFrame,
    raw: pl.DataFrame,
    key: Sequence[str],
    rowversion: str | None,
    normalized: pl.DataFrame | None = None,
    mapped: pl.DataFrame | None = None,
    fields: Sequence[str] = (),
) -> pl.DataFrame:
    """Dead letters for ``failures`` (``_row``, code, detail) of one stage.

    Args:
        stage: the stage that failed the records.
        failures: one row per failed record: ``_row``, ``code``, ``detail``.
        raw: the fetched records (text), with ``_row``.
        key: the business-key columns (their raw values become ``source_key``).
        rowversion: the rowversion column, if the entity has one.
        normalized: normalized records, when the failure came after normalization.
        mapped: mapped records (with ``bk_hash`` when known), after mapping; or
            ``_row`` with a ready ``mapped`` JSON column (what was sent).
        fields: the target fields of the mapped form.
    """
    if failures.height == 0:
        return empty_dead_letters()
    ids = failures.select(pl.col(ROW).cast(pl.UInt32), "code", "detail")
    raw_rows = raw.join(ids.select(ROW), on=ROW, how="semi")
    out = ids.join(_json_of(raw_rows, "raw"), on=ROW, how="left").join(
        raw_rows.select(
            pl.col(ROW),
            pl.struct(list(key)).struct.json_encode().alias("source_key"),
            (
                pl.col(rowversion).str.strip_chars().cast(pl.Int64, strict=False)
                if rowversion
                else pl.lit(None, dtype=pl.Int64)
            ).alias("rowversion"),
        ),
        on=ROW,
        how="left",
    )
    if normalized is not None:
        rows = normalized.join(ids.select(ROW), on=ROW, how="semi")
        out = out.join(_json_of(rows, "normalized"), on=ROW, how="left")
    if mapped is not None:
        rows = mapped.join(ids.select(ROW), on=ROW, how="semi")
        encoded = (
            pl.col("mapped")
            if "mapped" in rows.columns
            else pl.struct(list(fields)).struct.json_encode().alias("mapped")
        )
        forms = rows.select(pl.col(ROW), encoded)
        if "bk_hash" in rows.columns:
            forms = forms.with_columns(rows.get_column("bk_hash"))
        out = out.join(forms, on=ROW, how="left")
    return out.with_columns(pl.lit(stage).alias("stage")).select(
        [
            (pl.col(c) if c in out.columns or c == "stage" else pl.lit(None, dtype=t))
            .cast(t)
            .alias(c)
            for c, t in DEAD_LETTER_SCHEMA.items()
        ]
    )


def unreadable_letters(bad_lines: pl.DataFrame) -> pl.DataFrame:
    """Dead letters (stage ``fetch``) for lines of a page that were not a readable record.

    Args:
        bad_lines: ``FetchResult.bad_lines`` of the APISmith client: ``line``,
            ``code``, ``detail``, ``source_key`` and ``rowversion`` (as far as
            they could be read from the line) and ``position``.

    Returns:
        One letter per line: the line's text is the raw form; no normalized or
        mapped form, no BK_HASH and no ``_row`` (the line never became a record).
    """
    if bad_lines.height == 0:
        return empty_dead_letters()
    given = {
        "stage": pl.lit("fetch"),
        "code": pl.col("code"),
        "detail": pl.col("detail"),
        "raw": pl.col("line"),
        "source_key": pl.col("source_key"),
        "rowversion": pl.col("rowversion"),
    }
    return bad_lines.select(
        [
            given.get(name, pl.lit(None)).cast(dtype).alias(name)
            for name, dtype in DEAD_LETTER_SCHEMA.items()
        ]
    )


def letters_to_close(
    open_letters: pl.DataFrame, new_letters: pl.DataFrame, fine_keys: pl.Series | None
) -> tuple[pl.Series, pl.Series]:
    """Open dead letters a run makes obsolete: ``(superseded ids, recovered ids)``.

    Superseded: the run dead-letters the same record version again (same
    BK_HASH — or raw key, when the key could not be read — and rowversion); the
    new letter replaces the old. Recovered: the run fetched the record in a good
    form (it was delivered, unchanged, settled or now waits for a parent).

    Args:
        open_letters: ``id``, ``bk_hash``, ``source_key``, ``rowversion`` of open letters.
        new_letters: this run's dead letters.
        fine_keys: BK_HASHes the run fetched and did not fail (None: not known).
    """
    same_key = pl.coalesce(pl.col("bk_hash"), pl.col("source_key"))
    again = new_letters.select(same_key.alias("_k"), "rowversion").unique()
    superseded = open_letters.with_columns(same_key.alias("_k")).join(
        again, on=["_k", "rowversion"], how="semi", nulls_equal=True
    )
    recovered = open_letters.clear()
    if fine_keys is not None and fine_keys.len():
        # Probe the (many) fine keys against the (few) open letters.
        hit = fine_keys.filter(fine_keys.is_in(open_letters.get_column("bk_hash").implode()))
        recovered = open_letters.filter(pl.col("bk_hash").is_in(hit.implode()))
    return superseded.get_column("id"), recovered.get_column("id")
