"""CHAR / VARCHAR2 columns: cleaned text with its length checked.

Cleaning, in this order: remove every control character (Unicode category Cc:
C0, DEL and C1), compose to Unicode NFC, trim Unicode whitespace (White_Space:
spaces, tabs, NBSP, U+2000..U+200A, U+3000, ...) and byte order marks (U+FEFF)
at both ends. Empty or whitespace-only text becomes null. The length is checked
after cleaning.

Text holding U+0000 (NUL) fails instead: the fetch reads a lone surrogate
escape (a high surrogate without its low half) as NUL, so a NUL cannot be told
from a broken character.
"""

import polars as pl

from syncflow_dagster.stages.normalize.base import FailureCode, FastPath, Parsed, as_frame, codes_of
from syncflow_dagster.stages.normalize.oracle_types import OracleKind, OracleType

# Anything the fast path cannot pass through as is: a character outside
# U+0020..U+007E and U+00A0..U+02FF (controls; characters NFC might change or
# that may be Unicode spaces), a space / NBSP at either end, or a "[" / "{" at
# the start (what a JSON array or object value reads as: see reading.py). Text
# made only of U+0000..U+02FF is already NFC: all are starters that never compose.
_NEEDS_CLEANING = "[^\x20-\x7e\u00a0-\u02ff]|^[ \u00a0\\[{]|[ \u00a0]$"
# Trimmed text that is clean already: printable ASCII and U+00A0..U+02FF only.
_NOT_PLAIN = "[^\x20-\x7e\u00a0-\u02ff]"
_CONTROL = r"\p{Cc}"
# What trimming takes off both ends: Unicode White_Space and the byte order mark.
_EDGES = r"^[\s\x{FEFF}]+|[\s\x{FEFF}]+$"
NUL = "\x00"


def clean_text(raw: pl.Expr) -> pl.Expr:
    """The cleaned form of text ("" when nothing but whitespace/controls is left)."""
    return raw.str.replace_all(_CONTROL, "").str.normalize("NFC").str.replace_all(_EDGES, "")


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
        nul = pl.repeat(False, raw.len(), eager=True)
        if messy.len() > 0:
            # A NUL is not plain: only messy text can hold one.
            dirty = trimmed.gather(messy)
            nul = nul.scatter(messy, dirty.str.contains(NUL, literal=True))
            cleaned = as_frame(dirty).select(clean_text(pl.col("raw")))
            trimmed = trimmed.scatter(messy, cleaned.to_series())
        too_long = (pl.col("value").str.len_chars() > self.max_length).fill_null(False)
        keep = ~pl.col("nul") & ~too_long & (pl.col("value").str.len_bytes() > 0)
        out = pl.DataFrame({"value": trimmed, "nul": nul}).select(
            value=pl.when(keep).then("value"),
            code=codes_of(
                (pl.col("nul"), FailureCode.STRING_NUL), (too_long, FailureCode.STRING_TOO_LONG)
            ),
        )
        return Parsed(out["value"], out["code"])

    def problem(self, code: FailureCode) -> str:
        """What went wrong, in words."""
        if code is FailureCode.STRING_NUL:
            return (
                "holds U+0000 (NUL): a NUL character, or a lone surrogate escape "
                "(\\ud800-\\udbff) that the fetch reads as NUL; neither is text"
            )
        return f"longer than {self.max_length} characters after cleaning ({self.oracle_type})"
