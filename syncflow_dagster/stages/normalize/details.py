"""Failed values of several columns become one failure row per record.

The record's ``code`` and ``column`` are those of its first failing column (in
spec order); ``detail`` names every failing column with its code, the problem
in words and the raw value (control characters shown as U+FFFD, cut to
:data:`RAW_SHOWN` characters).
"""

from dataclasses import dataclass

import polars as pl

from syncflow_dagster.stages.failures import FAILURE_SCHEMA, ROW, shown

#: How many characters of a raw value a detail message shows.
RAW_SHOWN = 60


@dataclass(frozen=True)
class ColumnFailures:
    """The failed values of one column.

    Attributes:
        order: the column's position in the specs.
        column: the column name.
        positions: row positions (in the input frame) of the failed values.
        codes: the failure code of each.
        raw: the raw text of each.
        problems: failure code -> the problem in words, for this column.
    """

    order: int
    column: str
    positions: pl.Series
    codes: pl.Series
    raw: pl.Series
    problems: dict[str, str]

    def messages(self) -> pl.DataFrame:
        """One row per failed value: position, order, column, code, message."""
        raw = pl.col("raw").str.replace_all(r"\p{Cc}", "\ufffd")
        problem = pl.col("code").replace_strict(self.problems, return_dtype=pl.String)
        return pl.DataFrame({"pos": self.positions, "code": self.codes, "raw": self.raw}).select(
            pl.col("pos").cast(pl.UInt32),
            pl.lit(self.order, dtype=pl.Int32).alias("order"),
            pl.lit(self.column, dtype=pl.String).alias("column"),
            pl.col("code"),
            pl.concat_str(
                [
                    pl.lit(f"{self.column}: "),
                    pl.col("code"),
                    pl.lit(" - "),
                    problem,
                    pl.lit(", raw "),
                    shown(raw, limit=RAW_SHOWN),
                ]
            ).alias("message"),
        )


def failures_frame(
    failed: list[ColumnFailures], row_ids: pl.Series
) -> tuple[pl.DataFrame, pl.Series]:
    """The failures frame, and the input positions of the failed records."""
    messages = pl.concat([f.messages() for f in failed]).sort("pos", "order")
    per_record = messages.group_by("pos", maintain_order=True).agg(
        pl.col("code").first(),
        pl.col("column").first(),
        pl.col("message").str.join("; ").alias("detail"),
    )
    positions = per_record["pos"]
    failures = per_record.select(
        row_ids.gather(positions).alias(ROW).cast(FAILURE_SCHEMA[ROW]),
        pl.col("code"),
        pl.col("column"),
        pl.col("detail"),
    )
    return failures, positions
