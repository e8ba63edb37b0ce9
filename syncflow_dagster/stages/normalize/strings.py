"""CHAR / VARCHAR2 columns: cleaned text with its length checked.

Cleaning, in this order: remove every control character (Unicode category Cc:
C0, DEL and C1), compose to Unicode NFC, trim Unicode whitespace (White_Space:
spaces, tabs, NBSP, U+2000..U+200A, U+3000, ...) at both ends. Empty or
whitespace-only text becomes null. The length is checked after cleaning.
"""

import polars as pl

from syncflow_dagster.stages.normalize.base import FailureCode, FastPath, Parsed, as_frame, codes_of
from syncflow_dagster.stages.normalize.oracle_types import OracleKind, OracleType

# Anything the fast path cannot pass through as is: a character outside
# U+0020..U+007E and U+00A0..U+02FF (controls; characters NFC might change or
# that may be Unicode spaces), or a space / NBSP at either end. Text made only
# of U+0000..U+02FF is already NFC: all are starters that never compose.
_NEEDS_CLEANING = "[^\x20-\x7e\u00a0-\u02ff]|^[ \u00a0]|[ \u00a0]$"
# Trimmed text that is clean already: printable ASCII and U+00A0..U+02FF only.
_NOT_PLAIN = "[^\x20-\x7e\u00a0-\u02ff]"
_CONTROL = r"\p{Cc}"


def clean_text(raw: pl.Expr) -> pl.Expr:
    """The cleaned form of text ("" when nothing but whitespace/controls is left)."""
    return raw.str.replace_all(_CONTROL, "").str.normalize("NFC").str.strip_chars()


class StringNormalizer:
    """VARCHAR2(n) and CHAR(n); CHAR's right padding goes with the trimming."""

    def __init__(self, oracle_type: OracleType) -> None:
        """Prepare the length check for ``oracle_type``."""
        self.oracle_type = oracle_type
        self.max_length = oracle_type.length or 1

    @property
    def dtype(self) -> pl.DataType:
        """Always String."""
        return pl.String()

    def fast(self, raw: pl.Expr, sample: pl.Series) -> FastPath:
        """Printable Latin text without edge spaces and short enough is already clean."""
        text = raw.str.strip_chars_end(" ") if self.oracle_type.kind is OracleKind.CHAR else raw
        length = text.str.len_bytes()
        settled = ~text.str.contains(_NEEDS_CLEANING) & (length <= self.max_length)
        return FastPath(pl.when(length > 0).then(text), settled)

    def slow(self, raw: pl.Series) -> Parsed:
        """Full cleaning, then the length check in characters.

        Trimming first settles most rows (blank text, padded plain text); only
        what still holds controls or characters beyond U+02FF gets the full
        cleaning. (Trimming first changes nothing: no whitespace composes.)
        """
        trimmed = raw.str.strip_chars()
        messy = trimmed.str.contains(_NOT_PLAIN).fill_null(False).arg_true()
        if messy.len() > 0:
            cleaned = as_frame(trimmed.gather(messy)).select(clean_text(pl.col("raw")))
            trimmed = trimmed.scatter(messy, cleaned.to_series())
        too_long = (pl.col("value").str.len_chars() > self.max_length).fill_null(False)
        out = pl.DataFrame({"value": trimmed}).select(
            value=pl.when(~too_long & (pl.col("value").str.len_bytes() > 0)).then("value"),
            code=codes_of((too_long, FailureCode.STRING_TOO_LONG)),
        )
        return Parsed(out["value"], out["code"])

    def problem(self, code: FailureCode) -> str:
        """What went wrong, in words."""
        return f"longer than {self.max_length} characters after cleaning ({self.oracle_type})"
