"""FLAG columns (CHAR(1) Y/N flags): text to Boolean."""

import polars as pl

from syncflow_dagster.stages.normalize.base import FailureCode, FastPath, Parsed, as_frame, codes_of

TRUE_FORMS = ("Y", "1", "T")
FALSE_FORMS = ("N", "0", "F")
_FORMS: dict[str, bool] = {
    form: truth
    for forms, truth in ((TRUE_FORMS, True), (FALSE_FORMS, False))
    for upper in forms
    for form in {upper, upper.lower()}
}


class FlagNormalizer:
    """``Y``/``N``, ``1``/``0``, ``T``/``F`` in either case, surrounding whitespace ignored."""

    @property
    def dtype(self) -> pl.DataType:
        """Always Boolean."""
        return pl.Boolean()

    def fast(self, raw: pl.Expr, sample: pl.Series) -> FastPath:
        """Exactly one of the accepted letters or digits."""
        value = raw.replace_strict(_FORMS, default=None, return_dtype=pl.Boolean)
        return FastPath(value)

    def slow(self, raw: pl.Series) -> Parsed:
        """Trimmed forms; empty means null, anything else fails."""
        text = pl.col("raw").str.strip_chars()
        value = text.replace_strict(_FORMS, default=None, return_dtype=pl.Boolean)
        unreadable = value.is_null() & (text.str.len_bytes() > 0)
        out = as_frame(raw).select(
            value=value, code=codes_of((unreadable, FailureCode.FLAG_UNREADABLE))
        )
        return Parsed(out["value"], out["code"])

    def problem(self, code: FailureCode) -> str:
        """What went wrong, in words."""
        return "not a flag (Y/N, 1/0, T/F)"
