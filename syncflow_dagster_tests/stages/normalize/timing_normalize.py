"""Time the normalize stage on a 1M-row work_orders frame (a script, not a test).

    uv run python -m syncflow_dagster_tests.stages.normalize.timing_normalize [ROWS] [--emulator]

By default the frame is synthetic: values mostly in the plain forms, about 1% of
each column in an exotic form (padding, thousands separators, exponents,
DD-MON-RR, ISO offsets, NBSP, NFD, control characters), about 0.01% of records
unreadable. ``--emulator`` instead renders the rows with the APISmith emulator
(its far noisier mix: 10-20% exotic forms per column) and reads them the way
the fetch stage does (NDJSON, every column String).
"""

import argparse
import io
import time

import polars as pl

from syncflow_dagster.emulators.apismith.dataset import DatasetSpec, ErpDataset
from syncflow_dagster.stages.normalize import ColumnSpec, normalize

WORK_ORDERS = {
    "WO_NO": "VARCHAR2(20)",
    "ITEM_NO": "VARCHAR2(20)",
    "ORDER_QTY": "NUMBER(12,3)",
    "COMPLETED_QTY": "NUMBER(12,3)",
    "STATUS": "VARCHAR2(12)",
    "PRIORITY": "NUMBER(3,0)",
    "START_DATE": "DATE",
    "DUE_DATE": "DATE",
    "RELEASED_TS": "TIMESTAMP WITH TIME ZONE",
    "PLANNER_CODE": "CHAR(8)",
    "NOTES": "VARCHAR2(400)",
    "ORA_ROWSCN": "NUMBER(19,0)",
}
WORDS = ["released", "partial", "scrap", "rework", "expedite", "hold", "machine", "spindle"]


def _mix(seed: int) -> pl.Expr:
    """A cheap deterministic pseudo-random non-negative integer per row."""
    return (pl.int_range(pl.len(), dtype=pl.Int64) * 2654435761 + seed * 40503) % 1_000_003


def _exotic(seed: int, plain: pl.Expr, exotic: pl.Expr, per_mille: int = 10) -> pl.Expr:
    return pl.when(_mix(seed) % 1000 < per_mille).then(exotic).otherwise(plain)


def _qty(seed: int) -> pl.Expr:
    whole = (_mix(seed) % 100_000).cast(pl.String)
    frac = (_mix(seed + 1) % 1000).cast(pl.String).str.zfill(3)
    plain = pl.concat_str([whole, pl.lit("."), frac])
    exotic = pl.concat_str([pl.lit(" 1,"), frac, pl.lit(".50 ")])
    return _exotic(
        seed, plain, pl.when(_mix(seed) % 2 == 0).then(exotic).otherwise(pl.lit("1.2345E3"))
    )


def _date(seed: int) -> pl.Expr:
    stamp = pl.datetime(2024, 1, 1) + pl.duration(minutes=_mix(seed))
    return _exotic(seed, stamp.dt.strftime("%Y-%m-%d %H:%M:%S"), stamp.dt.strftime("%d-%b-%y"))


def synthetic_work_orders(rows: int) -> pl.DataFrame:
    """A raw (all-String) work_orders frame of ``rows`` records plus ``_row``."""
    released = (pl.datetime(2024, 1, 1) + pl.duration(seconds=_mix(9) * 7)).dt.replace_time_zone(
        "UTC"
    )
    words = pl.Series(WORDS)
    note = (
        pl.concat_str(
            [pl.lit(words[i % len(words)] + " ") for i in range(12)]
            + [(_mix(11) % 997).cast(pl.String)]
        )
        .str.slice(0, _mix(11) % 120)
        .str.strip_chars_end(" ")
    )
    frame = pl.DataFrame({"_row": pl.arange(0, rows, dtype=pl.UInt32, eager=True)}).with_columns(
        WO_NO=pl.concat_str([pl.lit("WO"), pl.col("_row").cast(pl.String).str.zfill(9)]),
        ITEM_NO=_exotic(
            1,
            pl.concat_str([pl.lit("IT-"), (_mix(1) % 50_000).cast(pl.String)]),
            pl.concat_str([pl.lit("\u00a0IT-"), (_mix(1) % 50_000).cast(pl.String), pl.lit("\t")]),
        ),
        ORDER_QTY=_qty(2),
        COMPLETED_QTY=_qty(3),
        STATUS=_exotic(4, pl.lit("RELEASED"), pl.lit("Plane\u0301d ")),
        PRIORITY=_exotic(5, (_mix(5) % 1000).cast(pl.String), pl.lit(" 7 ")),
        START_DATE=_date(6),
        DUE_DATE=_date(7),
        RELEASED_TS=_exotic(
            9,
            released.dt.strftime("%Y-%m-%d %H:%M:%S%.6f +00:00"),
            released.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        ),
        PLANNER_CODE=(pl.lit("PL") + (_mix(10) % 100).cast(pl.String)).str.pad_end(8),
        NOTES=_exotic(
            11, pl.when(_mix(12) % 3 == 0).then(pl.lit("")).otherwise(note), note + "\x07"
        ),
        ORA_ROWSCN=(pl.col("_row").cast(pl.Int64) + 10**12).cast(pl.String),
    )
    broken = pl.col("_row") % 10_000 == 17
    return frame.with_columns(ORDER_QTY=pl.when(broken).then(pl.lit("12x")).otherwise("ORDER_QTY"))


def emulator_work_orders(rows: int) -> pl.DataFrame:
    """Work orders as the APISmith emulator serves them, read as all-String NDJSON."""
    dataset = ErpDataset(DatasetSpec(seed=11, work_orders=rows))
    view, _ = dataset.views("work_orders")
    schema = {name: pl.String for name in WORK_ORDERS}
    ndjson = "\n".join(view.lines.to_list()).encode()
    return pl.read_ndjson(io.BytesIO(ndjson), schema=schema).with_row_index("_row")


def main() -> None:
    """Build the frame, then time a few runs of normalize()."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int, nargs="?", default=1_000_000)
    parser.add_argument("--emulator", action="store_true", help="render rows with the emulator")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    frame = emulator_work_orders(args.rows) if args.emulator else synthetic_work_orders(args.rows)
    specs = {name: ColumnSpec(name, type_text) for name, type_text in WORK_ORDERS.items()}
    print(f"{frame.height} rows x {len(specs)} columns, {frame.estimated_size('mb'):.0f} MB raw")
    for run in range(args.runs):
        start, cpu = time.perf_counter(), time.process_time()
        result = normalize(frame, specs, "Europe/Berlin")
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(
            f"run {run + 1}: {elapsed:.3f} s wall, {cpu:.3f} s CPU "
            f"({result.frame.height} clean, {result.failures.height} failed)"
        )


if __name__ == "__main__":
    main()
