"""Rendering true values in the forms the ERP sends them, as pre-built JSON text.

Every value of a row gets a form chosen by a random draw over (row id, rowversion): the
plain form for most values, the other forms of the contract's "Value forms" table at low
rates. The meaning never changes with the form, so a correct normalizer gets the ground
truth back. The result per row is one NDJSON line (``_line``), its key as a JSON array
(``_keyjson``) and its raw key values for ordering (``_k0``, ``_k1``, ...).

All of it is vectorized: a column's plain form is built for every row, the other forms
only for the few rows that draw them, and scattered back.
"""

import polars as pl

from syncflow_dagster.emulators.apismith import rng
from syncflow_dagster.emulators.apismith.schema import ROWVERSION, Column, Entity

_ESCAPE_FROM = ["\\", '"', *[chr(i) for i in range(32)]]
_ESCAPE_TO = ["\\\\", '\\"', *[f"\\u{i:04x}" for i in range(32)]]
_NULL = pl.lit("null")


def json_string(value: pl.Expr) -> pl.Expr:
    """A JSON string literal of ``value`` (null stays null)."""
    return pl.concat_str(pl.lit('"'), value.str.replace_many(_ESCAPE_FROM, _ESCAPE_TO), pl.lit('"'))


def _quoted(value: pl.Expr) -> pl.Expr:
    """A JSON string literal of a value known to need no escaping."""
    return pl.concat_str(pl.lit('"'), value, pl.lit('"'))


def _ladder(u: pl.Expr, bounds: list[tuple[float, int]], last: int) -> pl.Expr:
    """Form code by thresholds on the draw ``u``: the first bound above ``u`` wins."""
    expr: pl.Expr = pl.lit(last, pl.Int8)
    for bound, form in reversed(bounds):
        expr = pl.when(u < bound).then(pl.lit(form, pl.Int8)).otherwise(expr)
    return expr


def _apply_forms(
    frame: pl.DataFrame, plain: pl.Expr, form: pl.Expr, cases: dict[int, pl.Expr]
) -> pl.Series:
    """Plain fragments for all rows; for rows whose form code is ``c`` != 0, ``cases[c]``.

    Each other form is computed only on the rows that drew it.
    """
    out = frame.select(_plain=plain, _form=form)
    fragments = out["_plain"]
    for code, expr in cases.items():
        idx = (out["_form"] == code).arg_true()
        if idx.len():
            values = frame[idx].select(expr).to_series()
            if values.len() != idx.len():  # a literal: the same text for every such row
                fragments = fragments.scatter(idx, values[0])
            else:
                fragments = fragments.scatter(idx, values)
    return fragments


# ------------------------------------------------------------------- NUMBER


def canonical_number(col: Column) -> pl.Expr:
    """Shortest decimal text of a NUMBER value ("1234.5", "0", "12")."""
    text = pl.col(col.name).cast(pl.String)
    if col.scale == 0:
        return text
    return text.str.strip_chars_end("0").str.strip_chars_end(".")


def _parts(text: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """Sign ("-" or ""), integer digits and fraction digits ("" if none) of a decimal text."""
    sign = pl.when(text.str.starts_with("-")).then(pl.lit("-")).otherwise(pl.lit(""))
    unsigned = text.str.strip_prefix("-")
    int_part = unsigned.str.split(".").list.first()
    frac_part = unsigned.str.split(".").list.get(1, null_on_oob=True).fill_null("")
    return sign, int_part, frac_part


def _thousands(col: Column) -> pl.Expr:
    """Text like "1,234.50": all scale digits, thousands grouped by commas."""
    sign, int_part, frac_part = _parts(pl.col(col.name).cast(pl.String))
    grouped = int_part.str.reverse().str.extract_all(r"\d{1,3}").list.join(",").str.reverse()
    if col.scale:
        grouped = pl.concat_str(grouped, pl.lit("."), frac_part)
    return pl.concat_str(sign, grouped)


def _scientific(col: Column) -> pl.Expr:
    """Text like "1.2345E3": one digit before the point, no trailing zeros; 0 is "0E0"."""
    sign, int_part, frac_part = _parts(canonical_number(col))
    leading = frac_part.str.len_chars() - frac_part.str.strip_chars_start("0").str.len_chars()
    nonzero_int = int_part != "0"
    digits = (
        pl.when(nonzero_int)
        .then(pl.concat_str(int_part, frac_part).str.strip_chars_end("0"))
        .otherwise(frac_part.str.strip_chars("0"))
    )
    exponent = (
        pl.when(nonzero_int)
        .then(int_part.str.len_chars().cast(pl.Int64) - 1)
        .otherwise(-(leading.cast(pl.Int64) + 1))
    )
    mantissa = (
        pl.when(digits.str.len_chars() > 1)
        .then(pl.concat_str(digits.str.slice(0, 1), pl.lit("."), digits.str.slice(1)))
        .otherwise(digits)
    )
    return (
        pl.when(digits == "")
        .then(pl.lit("0E0"))
        .otherwise(pl.concat_str(sign, mantissa, pl.lit("E"), exponent.cast(pl.String)))
    )


def _number(frame: pl.DataFrame, col: Column, u: pl.Expr) -> pl.Series:
    value = pl.col(col.name)
    canonical = canonical_number(col)
    plain = pl.when(value.is_null()).then(_NULL).otherwise(canonical)
    is_zero = value == 0
    is_fraction = (value.abs() < 1) & ~is_zero
    general = [(0.88, 0), (0.91, 1), (0.94, 2), (0.97, 3)]
    form = (
        pl.when(value.is_null())
        .then(pl.when(u < 0.3).then(pl.lit(7, pl.Int8)).otherwise(pl.lit(0, pl.Int8)))
        .when(is_zero & (u < 0.06))
        .then(pl.lit(6, pl.Int8))
        .when(is_fraction & (u < 0.10))
        .then(pl.lit(5, pl.Int8))
        .otherwise(_ladder(u, general, 4))
    )
    sign, _, _ = _parts(canonical)
    cases = {
        1: _quoted(canonical),
        2: _quoted(pl.concat_str(pl.lit(" "), value.cast(pl.String), pl.lit(" "))),
        3: _quoted(_thousands(col)),
        4: _quoted(_scientific(col)),
        5: _quoted(pl.concat_str(sign, canonical.str.strip_prefix("-").str.strip_prefix("0"))),
        6: pl.lit('"-0"'),
        7: pl.lit('""'),
    }
    return _apply_forms(frame, plain, form, cases)


# ------------------------------------------------------------------- DATE

_DATE_FORMATS = {
    1: "%d-%b-%y",
    2: "%d-%b-%Y",
    3: "%Y-%m-%d %H:%M:%S",
    4: "%Y-%m-%dT%H:%M:%S",
    5: "%Y%m%d",
    6: "%Y-%m-%d",
}
# Forms that drop the time of day; a value with a time falls back to a form that keeps it.
_DATE_ONLY_FALLBACK = {1: 3, 2: 4, 5: 3, 6: 4}


def _date(frame: pl.DataFrame, col: Column, u: pl.Expr) -> pl.Series:
    value = pl.col(col.name)
    full = value.dt.strftime("%Y-%m-%d %H:%M:%S")
    midnight = value.dt.truncate("1d") == value
    plain = (
        pl.when(value.is_null())
        .then(_NULL)
        .when(midnight)
        .then(_quoted(full.str.slice(0, 10)))
        .otherwise(_quoted(full))
    )
    step = 0.2 / 6
    chosen = _ladder(u, [(0.8 + step * i, i) for i in range(6)], 6)
    fallback = chosen
    for code, instead in _DATE_ONLY_FALLBACK.items():
        fallback = pl.when(chosen == code).then(pl.lit(instead, pl.Int8)).otherwise(fallback)
    form = (
        pl.when(value.is_null())
        .then(pl.when(u < 0.3).then(pl.lit(7, pl.Int8)).otherwise(pl.lit(0, pl.Int8)))
        .when(midnight)
        .then(chosen)
        .otherwise(fallback)
    )

    cases = {
        form_code: _quoted(value.dt.strftime(fmt).str.to_uppercase())
        for form_code, fmt in _DATE_FORMATS.items()
    }
    cases[7] = pl.lit('""')
    return _apply_forms(frame, plain, form, cases)


# ------------------------------------------------------------------- TIMESTAMP WITH TIME ZONE


def _tstz(frame: pl.DataFrame, col: Column, u: pl.Expr, erp_timezone: str) -> pl.Series:
    value = pl.col(col.name)
    local = value.dt.convert_time_zone(erp_timezone)
    plain = (
        pl.when(value.is_null())
        .then(_NULL)
        .otherwise(_quoted(local.dt.strftime("%Y-%m-%d %H:%M:%S%.6f %:z")))
    )
    form = (
        pl.when(value.is_null())
        .then(pl.lit(0, pl.Int8))
        .otherwise(_ladder(u, [(0.85, 0), (0.93, 1)], 2))
    )
    utc = value.dt.convert_time_zone("UTC")
    cases = {
        1: _quoted(local.dt.strftime("%Y-%m-%dT%H:%M:%S%.6f%:z")),
        2: _quoted(utc.dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")),
    }
    return _apply_forms(frame, plain, form, cases)


# ------------------------------------------------------------------- VARCHAR2 / CHAR / flags

_NBSP = "\u00a0"
_TEXT_FORMS: dict[int, tuple[str, str]] = {
    1: ("  ", ""),
    2: ("", "   "),
    3: ("\t", "\t"),
    4: (_NBSP, ""),
    5: ("", _NBSP + " "),
    6: ("", "\r\n"),
    7: ("\x0b", ""),
    8: ("", "\x1a"),
}
_NFD_FORM = 9
_BLANK_FORMS = {10: "   ", 11: "\t", 12: _NBSP, 13: ""}


def _varchar(frame: pl.DataFrame, col: Column, u: pl.Expr, u2: pl.Expr) -> pl.Series:
    value = pl.col(col.name)
    plain = pl.when(value.is_null()).then(_NULL).otherwise(json_string(value))
    noisy = [(0.88, 0), (0.90, 1), (0.92, 2), (0.935, 3), (0.95, 4), (0.96, 5), (0.97, 6)]
    noisy += [(0.98, 7), (0.99, 8)]
    blank = [(0.6, 0), (0.7, 10), (0.8, 11), (0.9, 12)]
    form = (
        pl.when(value.is_null())
        .then(_ladder(u, blank, 13) if col.nullable else pl.lit(0, pl.Int8))
        .when((u2 < 0.15) & (value.str.len_bytes() != value.str.len_chars()))
        .then(pl.lit(_NFD_FORM, pl.Int8))
        .otherwise(_ladder(u, noisy, _NFD_FORM))
    )

    cases = {
        form_code: json_string(pl.concat_str(pl.lit(before), value, pl.lit(after)))
        for form_code, (before, after) in _TEXT_FORMS.items()
    }
    cases[_NFD_FORM] = json_string(value.str.normalize("NFD"))
    for form_code, blank_text in _BLANK_FORMS.items():
        cases[form_code] = json_string(pl.lit(blank_text))
    return _apply_forms(frame, plain, form, cases)


def _char(frame: pl.DataFrame, col: Column) -> pl.Series:
    value = pl.col(col.name)
    padded = json_string(value.str.pad_end(col.length))
    return frame.select(pl.when(value.is_null()).then(_NULL).otherwise(padded)).to_series()


_FLAG_FORMS = [
    ("Y", "N", 0.85),
    ("y", "n", 0.89),
    ("1", "0", 0.93),
    ("T", "F", 0.97),
    ("t", "f", 1.0),
]


def _flag(frame: pl.DataFrame, col: Column, u: pl.Expr) -> pl.Series:
    value = pl.col(col.name)
    expr: pl.Expr = _NULL
    for yes, no, bound in reversed(_FLAG_FORMS):
        text = pl.when(value).then(pl.lit(f'"{yes}"')).otherwise(pl.lit(f'"{no}"'))
        expr = pl.when(u < bound).then(text).otherwise(expr)
    return frame.select(pl.when(value.is_null()).then(_NULL).otherwise(expr)).to_series()


# ------------------------------------------------------------------- rows


def _plain_fragment(frame: pl.DataFrame, col: Column) -> pl.Series:
    """The plain form only (key columns and the rowversion are never disguised)."""
    value = pl.col(col.name)
    if col.kind == "number":
        text = canonical_number(col)
    elif col.kind in ("varchar", "char"):
        text = json_string(value)
    else:
        raise ValueError(f"key column {col.name} must be VARCHAR2, CHAR or NUMBER")
    return frame.select(pl.when(value.is_null()).then(_NULL).otherwise(text)).to_series()


def render_column(
    frame: pl.DataFrame, entity: Entity, col: Column, seed: int, erp_timezone: str
) -> pl.Series:
    """The JSON fragment of one column for every row of ``frame``."""
    if col.name in entity.key or col.name == ROWVERSION:
        fragments = _plain_fragment(frame, col)
    else:
        index = pl.col("_rid").cast(pl.UInt64) * pl.lit(4_294_967_311, pl.UInt64) + pl.col(
            ROWVERSION
        ).cast(pl.UInt64)
        frame = frame.with_columns(
            _u=rng.uniform(index, rng.stream(seed, "form", entity.name, col.name)),
            _u2=rng.uniform(index, rng.stream(seed, "form2", entity.name, col.name)),
        )
        u, u2 = pl.col("_u"), pl.col("_u2")
        kind = col.kind
        if kind == "number":
            fragments = _number(frame, col, u)
        elif kind == "date":
            fragments = _date(frame, col, u)
        elif kind == "tstz":
            fragments = _tstz(frame, col, u, erp_timezone)
        elif kind == "varchar":
            fragments = _varchar(frame, col, u, u2)
        elif kind == "char":
            fragments = _char(frame, col)
        else:
            fragments = _flag(frame, col, u)
    overridden = ((frame["_bad_col"] == col.name) & frame["_ovr_val"].is_not_null()).fill_null(
        False
    )
    if overridden.any():
        idx = overridden.arg_true()
        raw = frame["_ovr_val"].gather(idx).to_frame("v").select(json_string(pl.col("v")))
        fragments = fragments.scatter(idx, raw.to_series())
    return fragments.alias(col.name)


def raw_key(frame: pl.DataFrame, col: Column) -> pl.Series:
    """The key column's value as sent (an overriding bad value wins over the truth)."""
    value = pl.col(col.name)
    if col.kind == "number":
        return frame.select(value.cast(pl.Int64)).to_series()
    override = pl.when(pl.col("_bad_col") == col.name).then(pl.col("_ovr_val"))
    return frame.select(pl.coalesce(override, value)).to_series()


def render_rows(frame: pl.DataFrame, entity: Entity, seed: int, erp_timezone: str) -> pl.DataFrame:
    """Pre-render rows: ``_rid``, ``_rv``, ``_k0``.., ``_line`` (no newline), ``_keyjson``."""
    fragments = {
        col.name: render_column(frame, entity, col, seed, erp_timezone) for col in entity.columns
    }
    parts: list[pl.Expr] = []
    for i, col in enumerate(entity.columns):
        parts.append(pl.lit(("{" if i == 0 else ",") + f'"{col.name}":'))
        parts.append(pl.col(col.name))
    parts.append(pl.lit("}"))
    key_parts: list[pl.Expr] = [pl.lit("[")]
    for i, name in enumerate(entity.key):
        if i:
            key_parts.append(pl.lit(","))
        key_parts.append(pl.col(name))
    key_parts.append(pl.lit("]"))
    texts = pl.DataFrame(fragments).select(
        _line=pl.concat_str(parts), _keyjson=pl.concat_str(key_parts)
    )
    keys = {f"_k{i}": raw_key(frame, col) for i, col in enumerate(entity.key_columns)}
    return pl.DataFrame(
        {"_rid": frame["_rid"], "_rv": frame[ROWVERSION].cast(pl.Int64), **keys}
    ).hstack(texts)
