"""Reading the spec'd columns: fast paths in one query, slow paths patched in.

* Every column's fast path runs in one parallel Polars query.
* Per column, the exact slow path runs on just the rows the fast path left
  unsettled, which are then patched in (filter-and-patch); the columns' slow
  paths run on a few threads (Polars releases the GIL while it computes).
* A column with few distinct values (status codes, planner codes, dates) is
  read once per distinct value, and the results are mapped back to the rows.
* Whatever the type, a value that is a whole JSON array or object fails with
  ``value_not_scalar``: the fetch reads an ERP array or object value as its
  JSON text (``["a", "b"]``), and a column holds one scalar. No fast path
  settles such text, so this is looked for among the unsettled rows only.
"""

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import polars as pl

from syncflow_dagster.stages.normalize.base import ColumnNormalizer, FailureCode, Parsed
from syncflow_dagster.stages.normalize.details import ColumnFailures

#: Threads that run the columns' slow paths side by side.
SLOW_PATH_THREADS = 2
#: How many raw values of a column are looked at to pick a fast form and to
#: guess whether the column has few distinct values.
SAMPLE_SIZE = 4096
#: A column is read per distinct value when it has at most 1/DISTINCT_SHARE as
#: many distinct values as rows.
DISTINCT_SHARE = 32
#: Above this share of distinct values in the sample, distinct values are not even counted.
SAMPLE_DISTINCT_LIMIT = 0.6

ColumnRead = tuple[pl.Series, ColumnFailures | None]
"""A column's typed values (all rows) and its failed values, if any."""


@dataclass(frozen=True)
class Column:
    """One spec'd column to read.

    Attributes:
        order: its position in the specs.
        name: the column name.
        normalizer: what reads it.
        raw: the raw text of every row.
        sample: a few thousand non-null raw values spread over the column.
        distinct: its distinct non-null raw values, when there are few of them.
    """

    order: int
    name: str
    normalizer: ColumnNormalizer
    raw: pl.Series
    sample: pl.Series
    distinct: pl.Series | None


def sample_of(raw: pl.Series) -> pl.Series:
    """About :data:`SAMPLE_SIZE` non-null values spread evenly over ``raw``."""
    return raw.gather_every(max(1, raw.len() // SAMPLE_SIZE)).drop_nulls()


def _few_distinct(raw: pl.Series, sample: pl.Series) -> pl.Series | None:
    if sample.n_unique() > SAMPLE_DISTINCT_LIMIT * sample.len():
        return None
    distinct = raw.unique().drop_nulls()
    return distinct if distinct.len() * DISTINCT_SHARE <= raw.len() else None


def plan_column(order: int, name: str, normalizer: ColumnNormalizer, raw: pl.Series) -> Column:
    """Look at a column's values to decide how to read it."""
    sample = sample_of(raw)
    return Column(order, name, normalizer, raw, sample, _few_distinct(raw, sample))


def _fast_paths(columns: list[Column]) -> pl.DataFrame:
    """The columns' fast paths in one query: ``v{order}`` values, ``u{order}`` unsettled rows."""
    computed: list[pl.Expr] = []
    unsettled: list[pl.Expr] = []
    for column in columns:
        i, raw, normalizer = column.order, pl.col(f"r{column.order}"), column.normalizer
        fast = normalizer.fast(raw, column.sample)
        computed.append(raw)
        computed.append(fast.value.cast(normalizer.dtype).alias(f"v{i}"))
        settled = pl.col(f"v{i}").is_not_null()
        if fast.settled is not None:
            computed.append(fast.settled.alias(f"s{i}"))
            settled = pl.col(f"s{i}").fill_null(False)
        unsettled.append(pl.col(f"v{i}"))
        unsettled.append((pl.col(f"r{i}").is_not_null() & ~settled).alias(f"u{i}"))
    raws = pl.DataFrame([column.raw.rename(f"r{column.order}") for column in columns])
    return raws.lazy().select(computed).select(unsettled).collect()


#: What a value that is not a scalar is, in words.
NOT_SCALAR_PROBLEM = (
    "a JSON array or object, not a single value (the ERP sent a nested value, "
    "or text that reads exactly like one)"
)


def json_containers(raw: pl.Series) -> pl.Series:
    """True where the text is a whole JSON array or object (``[...]`` / ``{...}``).

    Only text that starts like one is looked at further, and only text shaped
    like one (``[`` ... ``]``, ``{`` ... ``}``) is parsed.
    """
    text = pl.col("raw")
    opening = raw.to_frame("raw").select(text.str.starts_with("[") | text.str.starts_with("{"))
    found = opening.to_series().fill_null(False)
    candidates = found.arg_true()
    if candidates.len() == 0:
        return found
    container = (
        raw.gather(candidates)
        .to_frame("raw")
        .select(
            (
                (text.str.starts_with("[") & text.str.ends_with("]"))
                | (text.str.starts_with("{") & text.str.ends_with("}"))
            )
            & text.str.json_path_match("$").is_not_null()
        )
        .to_series()
    )
    return found.scatter(candidates, container)


def _slow(normalizer: ColumnNormalizer, raw: pl.Series) -> Parsed:
    """The normalizer's slow path, with JSON arrays and objects failed as not scalar.

    Text columns take any text, so each of their unsettled values is looked at;
    other types fail such text anyway, so only their failures are (for the code).
    """
    parsed = normalizer.slow(raw)
    if normalizer.dtype == pl.String():
        nested = json_containers(raw)
    else:
        failed = parsed.codes.is_not_null().arg_true()
        if failed.len() == 0:
            return parsed
        nested = pl.repeat(False, raw.len(), eager=True).scatter(
            failed, json_containers(raw.gather(failed))
        )
    if not nested.any():
        return parsed
    code = pl.lit(FailureCode.VALUE_NOT_SCALAR.value, dtype=pl.String)
    out = pl.DataFrame({"n": nested, "v": parsed.values, "c": parsed.codes}).select(
        v=pl.when(~pl.col("n")).then(pl.col("v")),
        c=pl.when(pl.col("n")).then(code).otherwise(pl.col("c")),
    )
    return Parsed(out["v"], out["c"])


def _problem(normalizer: ColumnNormalizer, code: str) -> str:
    failure = FailureCode(code)
    if failure is FailureCode.VALUE_NOT_SCALAR:
        return NOT_SCALAR_PROBLEM
    return normalizer.problem(failure)


def _patch(column: Column, values: pl.Series, unsettled: pl.Series) -> ColumnRead:
    """Run the slow path on the unsettled rows of one column and patch them in."""
    todo = unsettled.arg_true()
    if todo.len() == 0:
        return values.rename(column.name), None
    normalizer = column.normalizer
    raw = column.raw.gather(todo)
    parsed = _slow(normalizer, raw)
    values = values.scatter(todo, parsed.values.cast(normalizer.dtype)).rename(column.name)
    bad = parsed.codes.is_not_null()
    if not bad.any():
        return values, None
    codes = parsed.codes.filter(bad)
    problems = {code: _problem(normalizer, code) for code in codes.unique().to_list()}
    failed = ColumnFailures(
        column.order, column.name, todo.filter(bad), codes, raw.filter(bad), problems
    )
    return values, failed


def _read_distinct(column: Column, distinct: pl.Series) -> ColumnRead:
    """Read each distinct value once, then map the results back to the rows."""
    once = replace(column, raw=distinct, distinct=None)
    first = _fast_paths([once])
    values, failed = _patch(once, first[f"v{once.order}"], first[f"u{once.order}"])
    positions = pl.int_range(distinct.len(), dtype=pl.UInt32, eager=True)
    index = column.raw.replace_strict(distinct, positions, default=None, return_dtype=pl.UInt32)
    values = values.gather(index).rename(column.name)
    if failed is None:
        return values, None
    codes = pl.repeat(None, distinct.len(), dtype=pl.String, eager=True)
    codes = codes.scatter(failed.positions, failed.codes).gather(index)
    bad = codes.is_not_null()
    rows = bad.arg_true()
    raw = column.raw.filter(bad)
    return values, ColumnFailures(
        column.order, column.name, rows, codes.filter(bad), raw, failed.problems
    )


def read_columns(columns: list[Column]) -> list[ColumnRead]:
    """Read every column (results in the given order).

    The distinct-value reads start first and overlap the fast-path query of
    the other columns; the slow paths follow as the query is done.
    """
    with ThreadPoolExecutor(max_workers=SLOW_PATH_THREADS) as pool:
        pending: dict[int, Future[ColumnRead]] = {
            column.order: pool.submit(_read_distinct, column, column.distinct)
            for column in columns
            if column.distinct is not None
        }
        direct = [column for column in columns if column.distinct is None]
        if direct:
            first = _fast_paths(direct)
            for column in direct:
                i = column.order
                pending[i] = pool.submit(_patch, column, first[f"v{i}"], first[f"u{i}"])
        return [pending[column.order].result() for column in columns]
