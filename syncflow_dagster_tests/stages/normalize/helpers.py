"""Small drivers for the normalize tests: one column through the stage, fast vs slow paths."""

from collections.abc import Sequence
from typing import Any

import polars as pl

from syncflow_dagster.stages.normalize import ColumnSpec, normalize, normalizer_for

ZONE = "Europe/Berlin"


def raw_frame(columns: dict[str, Sequence[str | None]]) -> pl.DataFrame:
    """A raw frame: the given String columns plus ``_row`` 0..n-1."""
    height = len(next(iter(columns.values())))
    data: dict[str, Any] = {"_row": pl.Series(range(height), dtype=pl.UInt32)}
    data.update({name: pl.Series(values, dtype=pl.String) for name, values in columns.items()})
    return pl.DataFrame(data)


def run_column(
    type_text: str, values: Sequence[str | None], *, flag: bool = False, zone: str = ZONE
) -> list[tuple[Any, str | None]]:
    """Normalize one column; per input value: (normalized value or None, failure code or None)."""
    frame = raw_frame({"C": values})
    result = normalize(frame, {"C": ColumnSpec("C", type_text, flag=flag)}, zone)
    good = dict(zip(result.frame["_row"].to_list(), result.frame["C"].to_list(), strict=True))
    bad = dict(
        zip(result.failures["_row"].to_list(), result.failures["code"].to_list(), strict=True)
    )
    assert set(good).isdisjoint(bad)
    assert set(good) | set(bad) == set(range(len(values)))
    return [(good.get(i), bad.get(i)) for i in range(len(values))]


def one(type_text: str, value: str | None, *, flag: bool = False, zone: str = ZONE) -> Any:
    """The normalized value; fails the test when the value is refused."""
    [(result, code)] = run_column(type_text, [value], flag=flag, zone=zone)
    assert code is None, f"{value!r} refused with {code}"
    return result


def code_of(type_text: str, value: str, *, flag: bool = False, zone: str = ZONE) -> str | None:
    """The failure code of a single value (None when it normalized)."""
    [(_, code)] = run_column(type_text, [value], flag=flag, zone=zone)
    return code


def fast_and_slow(
    type_text: str,
    values: Sequence[str],
    *,
    zone: str = ZONE,
    sample: Sequence[str] | None = None,
) -> list[tuple[bool, Any, Any, str | None]]:
    """Per value: (fast path settled it, fast value, slow value, slow code).

    ``sample`` stands for the column's sample (default: the values themselves).
    """
    normalizer = normalizer_for(ColumnSpec("C", type_text), zone)
    raw = pl.Series("C", values, dtype=pl.String)
    example = raw if sample is None else pl.Series("C", sample, dtype=pl.String)
    fast = normalizer.fast(pl.col("C"), example.drop_nulls())
    settled = fast.value.is_not_null() if fast.settled is None else fast.settled.fill_null(False)
    first = raw.to_frame().select(value=fast.value.cast(normalizer.dtype), settled=settled)
    slow = normalizer.slow(raw)
    return list(
        zip(
            first["settled"].to_list(),
            first["value"].to_list(),
            slow.values.to_list(),
            slow.codes.to_list(),
            strict=True,
        )
    )


def mutations(text: str) -> list[str]:
    """Near misses of ``text``: each character dropped, doubled or replaced by a digit or sign."""
    out = []
    for i in range(len(text)):
        out += [text[:i] + text[i + 1 :], text[:i] + text[i] + text[i:]]
        out += [text[:i] + c + text[i + 1 :] for c in "09+- T"]
    return out
