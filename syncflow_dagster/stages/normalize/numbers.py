"""NUMBER / INTEGER columns: text to Int64 or Float64, with Oracle's precision and scale.

The slow path decomposes a value exactly (sign, significant digits, decimal
exponent) so precision and scale are checked on the decimal the ERP sent, never
on a rounded float.
"""

import polars as pl

from syncflow_dagster.stages.normalize.base import FailureCode, FastPath, Parsed, as_frame, codes_of
from syncflow_dagster.stages.normalize.oracle_types import INT64_SAFE_PRECISION, OracleType

#: Oracle NUMBER holds magnitudes below 1E126: at most 126 integer digits.
UNCONSTRAINED_INTEGER_DIGITS = 126
#: A stand-in for exponents too large to hold: anything this big fails the checks.
_HUGE_EXPONENT = 1_000_000_000

# A plain number with comma thousands groups.
_GROUPED = r"^-?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?$"
# sign, integer part (plain or with comma thousands groups), fraction, exponent.
_NUMBER = (
    r"^([+-]?)([0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)?"
    r"(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?$"
)


def _without_negative_zero(value: pl.Expr) -> pl.Expr:
    """``value`` with -0.0 replaced by 0.0 ("-0" is zero, not a signed zero)."""
    return pl.when(value == 0.0).then(pl.lit(0.0)).otherwise(value)


class NumberNormalizer:
    """NUMBER(p,s), NUMBER(p), NUMBER and INTEGER.

    Whole-number types (scale <= 0, INTEGER) become Int64, the others Float64.
    """

    def __init__(self, oracle_type: OracleType) -> None:
        """Prepare the checks for ``oracle_type``."""
        self.oracle_type = oracle_type
        self.integral = oracle_type.is_integral
        if oracle_type.precision is None:
            self.max_int_digits = UNCONSTRAINED_INTEGER_DIGITS
            self.scale: int | None = None
        else:
            self.scale = oracle_type.scale or 0
            self.max_int_digits = oracle_type.precision - self.scale

    @property
    def dtype(self) -> pl.DataType:
        """Int64 for whole-number types, else Float64."""
        return pl.Int64() if self.integral else pl.Float64()

    def fast(self, raw: pl.Expr, sample: pl.Series) -> FastPath:
        """Plain forms only: an integer for Int64 columns, ``-?d+(.d+)?`` within p,s for Float64.

        Empty text is settled too (as null).
        """
        value, plain = self._plain(raw)
        return FastPath(value, plain | (raw.str.len_bytes() == 0))

    def _plain(self, text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        """The value of plain text that fits the type, and where the text is such."""
        if self.integral:
            return self._plain_integral(text)
        if self.scale is None:
            shape = rf"^-?[0-9]{{1,{UNCONSTRAINED_INTEGER_DIGITS}}}(?:\.[0-9]+)?$"
        elif self.max_int_digits >= 1:
            shape = rf"^-?[0-9]{{1,{self.max_int_digits}}}(?:\.[0-9]{{1,{self.scale}}})?$"
        else:  # NUMBER(p,s) with s >= p: leading fractional zeros matter, read exactly.
            return pl.lit(None, dtype=pl.Float64), pl.lit(False)
        plain = text.str.contains(shape)
        value = pl.when(plain).then(_without_negative_zero(text.cast(pl.Float64, strict=False)))
        return value, plain

    def _plain_integral(self, text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        value = text.cast(pl.Int64, strict=False)
        fits = value.is_not_null()
        if self.max_int_digits <= INT64_SAFE_PRECISION:
            limit = 10**self.max_int_digits
            fits = fits & (value > -limit) & (value < limit)
        scale = self.scale or 0
        if scale < 0:
            step = 10**-scale
            fits = fits & ((value % step == 0) if step <= 10**18 else (value == 0))
        return pl.when(fits).then(value), fits

    def slow(self, raw: pl.Series) -> Parsed:
        """Every accepted form, with exact precision and scale checks.

        Padded and thousands-grouped plain numbers are common: once trimmed and
        ungrouped, they are read like the fast path reads plain text; only the
        rest is decomposed digit by digit.
        """
        text = pl.col("raw").str.strip_chars()
        ungrouped = (
            pl.when(text.str.contains(_GROUPED))
            .then(text.str.replace_all(",", "", literal=True))
            .otherwise(text)
        )
        value, plain = self._plain(pl.col("ungrouped"))
        quick = (
            as_frame(raw)
            .lazy()
            .with_columns(ungrouped=ungrouped)
            .select(value=value.cast(self.dtype), plain=plain.fill_null(False))
            .collect()
        )
        rest = (~quick["plain"]).arg_true()
        if rest.len() == 0:
            return Parsed(quick["value"], pl.repeat(None, raw.len(), dtype=pl.String, eager=True))
        exact = self._exact(raw.gather(rest))
        values = quick["value"].scatter(rest, exact.values)
        codes = pl.repeat(None, raw.len(), dtype=pl.String, eager=True).scatter(rest, exact.codes)
        return Parsed(values, codes)

    def _exact(self, raw: pl.Series) -> Parsed:
        """Decompose each value into sign, significant digits and a power of ten."""
        text = pl.col("raw").str.strip_chars()
        parts = (
            as_frame(raw)
            .lazy()
            .select(text=text, parts=text.str.extract_groups(_NUMBER))
            .unnest("parts")
            .rename({"1": "sign", "2": "integer", "3": "fraction", "4": "exponent"})
        )
        digits = pl.concat_str(
            [
                pl.col("integer").fill_null("").str.replace_all(",", "", literal=True),
                pl.col("fraction").fill_null(""),
            ]
        )
        exponent = pl.col("exponent")
        decomposed = (
            parts.with_columns(unpadded=digits.str.strip_chars_start("0"), digits=digits)
            .with_columns(significant=pl.col("unpadded").str.strip_chars_end("0"))
            .select(
                empty=pl.col("text").fill_null("").str.len_bytes() == 0,
                readable=pl.col("sign").is_not_null() & (pl.col("digits").str.len_bytes() > 0),
                sign=pl.col("sign"),
                significant=pl.col("significant"),
                # value = significant * 10**power
                power=(
                    pl.when(exponent.is_null())
                    .then(0)
                    .otherwise(
                        exponent.cast(pl.Int64, strict=False)
                        .fill_null(pl.when(exponent.str.starts_with("-")).then(-_HUGE_EXPONENT))
                        .fill_null(_HUGE_EXPONENT)
                        .clip(-_HUGE_EXPONENT, _HUGE_EXPONENT)
                    )
                    - pl.col("fraction").fill_null("").str.len_bytes().cast(pl.Int64)
                    + pl.col("unpadded").str.len_bytes().cast(pl.Int64)
                    - pl.col("significant").str.len_bytes().cast(pl.Int64)
                ),
            )
        )
        return self._classify(decomposed)

    def _classify(self, frame: pl.LazyFrame) -> Parsed:
        significant = pl.col("significant")
        power = pl.col("power")
        zero = significant.str.len_bytes() == 0
        integer_digits = significant.str.len_bytes().cast(pl.Int64) + power
        readable = pl.col("readable")
        out_of_range = readable & ~zero & (integer_digits > self.max_int_digits)
        scale_exceeded = (
            readable & ~zero & (-power > self.scale) if self.scale is not None else pl.lit(False)
        )
        checked = frame.with_columns(
            zero=zero,
            ok=readable & ~out_of_range & ~scale_exceeded,
            out_of_range=out_of_range,
            scale_exceeded=scale_exceeded,
        )
        if self.integral:
            zeros = pl.lit("0" * (self.max_int_digits + 1)).str.slice(
                0, power.clip(0, self.max_int_digits + 1)
            )
            text = pl.concat_str([pl.col("sign"), significant, zeros])
            number = text.cast(pl.Int64, strict=False)
            zero_value = pl.lit(0, pl.Int64)
        else:
            text = pl.concat_str([pl.col("sign"), significant, pl.lit("e"), power.cast(pl.String)])
            number = _without_negative_zero(text.cast(pl.Float64, strict=False))
            zero_value = pl.lit(0.0)
        ok, zero = pl.col("ok"), pl.col("zero")
        valued = checked.with_columns(number=pl.when(ok & ~zero).then(number)).with_columns(
            # beyond Int64 (precision > 18) or Float64: out of range as stored here
            overflow=ok & ~zero & ~pl.col("number").is_finite().fill_null(False)
            if not self.integral
            else ok & ~zero & pl.col("number").is_null()
        )
        out = valued.select(
            value=pl.when(ok & zero).then(zero_value).when(~pl.col("overflow")).then("number"),
            code=codes_of(
                (pl.col("empty"), None),
                (~pl.col("readable"), FailureCode.NUMBER_UNREADABLE),
                (pl.col("out_of_range") | pl.col("overflow"), FailureCode.NUMBER_OUT_OF_RANGE),
                (pl.col("scale_exceeded"), FailureCode.NUMBER_SCALE_EXCEEDED),
            ),
        ).collect()
        return Parsed(out["value"].cast(self.dtype), out["code"])

    def problem(self, code: FailureCode) -> str:
        """What went wrong, in words, for this column's type."""
        ot = self.oracle_type
        if code is FailureCode.NUMBER_OUT_OF_RANGE:
            if self.integral and self.max_int_digits > INT64_SAFE_PRECISION:
                return f"outside {ot} as stored here (Int64: |v| <= 9223372036854775807)"
            return f"more than {self.max_int_digits} integer digits for {ot}"
        if code is FailureCode.NUMBER_SCALE_EXCEEDED:
            scale = self.scale or 0
            if scale <= 0:
                return f"not a multiple of {10**-scale} for {ot}"
            return f"more than {scale} fractional digits for {ot}"
        return f"not a number ({ot})"
