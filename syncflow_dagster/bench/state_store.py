"""Benchmark of the state store's hot path on a throwaway, durable PostgreSQL.

    uv run python -m syncflow_dagster.bench.state_store [--rows 1000000] [--repeat 5] [--baselines]

Prints min / median / max wall time per operation. ``--baselines`` also times
the plainer designs the store replaced (the "before" of each optimisation) on
the same data and server. Figures depend on the machine, which is described
first: write them down together.
"""

import argparse
import io
import os
import platform
import statistics
import time
from collections.abc import Callable

import polars as pl
import polars_hash as plh
from sqlalchemy import Connection, Engine

from syncflow_dagster.edges.state import StateStore, pgcopy
from syncflow_dagster.edges.state.binary import parse_rows
from syncflow_dagster.edges.state.copyout import copy_out
from syncflow_dagster.edges.state.pg_state import STATE_COLUMNS, STATE_FIELDS
from syncflow_dagster.testing.postgres import postgres_cluster

ENTITY = "items"
# The baselines run after the store has written the entity once (it has an id by then).
ENTITY_ID = f"(SELECT id FROM sync_entities WHERE name = '{ENTITY}')"
_STATE = {"bk_hash": pl.String, "data_hash": pl.String, "rowversion": pl.Int64}


def records(n: int, offset: int = 0, salt: str = "") -> pl.DataFrame:
    """``n`` records with uniformly spread hex hashes, like xxh3-128 / BLAKE3 ones."""
    keys = pl.DataFrame({"k": pl.int_range(offset, offset + n, eager=True).cast(pl.String)})
    keys = keys.with_columns(ks=pl.col("k") + pl.lit(salt))
    return keys.select(
        bk_hash=plh.col("k").chash.sha2_256().str.slice(0, 32),
        data_hash=plh.col("ks").chash.blake3(),
        rowversion=pl.int_range(offset, offset + n, dtype=pl.Int64),
    )


def timed(
    label: str, fn: Callable[[], object], repeat: int, setup: Callable[[], object] | None = None
) -> float:
    """Run ``fn`` ``repeat`` times (``setup`` untimed before each); print and return the median."""
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(
        f"  {label:54s} min {min(times):6.3f}s  median {median:6.3f}s  max {max(times):6.3f}s",
        flush=True,
    )
    return median


def _machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{platform.node()}: {os.cpu_count()} CPU ({cpu}), load average {load}"


# -- the designs the store replaced ---------------------------------------------


def baseline_load_csv(engine: Engine) -> pl.DataFrame:
    """Before: psycopg's Copy iterator over CSV whose hex the server builds."""
    sql = (
        "COPY (SELECT replace(bk_hash::text, '-', ''), encode(data_hash, 'hex'), rowversion"
        f" FROM erp_sync_state WHERE entity_id = {ENTITY_ID}) TO STDOUT (FORMAT csv)"
    )
    out = io.BytesIO()
    with engine.begin() as conn:
        driver = pgcopy.psycopg_connection(conn)
        with driver.cursor() as cursor, cursor.copy(sql) as copy:
            for chunk in copy:
                out.write(chunk)
    return pl.read_csv(
        out.getvalue(), has_header=False, new_columns=list(_STATE), schema_overrides=_STATE
    )


def baseline_load_binary_then_parse(engine: Engine) -> pl.DataFrame:
    """Before: the same binary COPY, but parsed only once it has all arrived."""
    select = f"SELECT {STATE_COLUMNS} FROM erp_sync_state s WHERE s.entity_id = {ENTITY_ID}"
    with engine.begin() as conn:
        blob = copy_out(conn, f"COPY ({select}) TO STDOUT (FORMAT binary)")
    return parse_rows(blob[19:-2], STATE_FIELDS)


def _stage(conn: Connection, frame: pl.DataFrame) -> None:
    data = frame.select("bk_hash", (pl.lit("\\\\x") + pl.col("data_hash")), "rowversion")
    conn.exec_driver_sql(
        "CREATE TEMP TABLE _b (bk_hash uuid, data_hash bytea, rowversion bigint) ON COMMIT DROP"
    )
    pgcopy.copy_in(conn, "COPY _b FROM STDIN", data, pgcopy.to_copy_text)
    conn.exec_driver_sql("ANALYZE _b")


def baseline_upsert_on_conflict(engine: Engine, frame: pl.DataFrame, batch_id: int) -> None:
    """Before: staging COPY + one INSERT … ON CONFLICT DO UPDATE, whatever the entity holds."""
    with engine.begin() as conn:
        _stage(conn, frame)
        conn.exec_driver_sql(
            f"INSERT INTO erp_sync_state SELECT {ENTITY_ID}, bk_hash, data_hash, rowversion,"
            " %(b)s FROM _b ON CONFLICT (entity_id, bk_hash) DO UPDATE SET"
            " data_hash = excluded.data_hash, rowversion = excluded.rowversion,"
            " last_batch_id = excluded.last_batch_id",
            {"b": batch_id},
        )


def baseline_upsert_update_insert(engine: Engine, frame: pl.DataFrame, batch_id: int) -> None:
    """Before: staging COPY + UPDATE … FROM + anti-join INSERT (no speculative insertion)."""
    params = {"b": batch_id}
    with engine.begin() as conn:
        _stage(conn, frame)
        conn.exec_driver_sql(
            "UPDATE erp_sync_state s SET data_hash = t.data_hash, rowversion = t.rowversion,"
            " last_batch_id = %(b)s::bigint FROM _b t"
            f" WHERE s.entity_id = {ENTITY_ID} AND s.bk_hash = t.bk_hash",
            params,
        )
        conn.exec_driver_sql(
            f"INSERT INTO erp_sync_state SELECT {ENTITY_ID}, t.bk_hash, t.data_hash,"
            " t.rowversion, %(b)s::bigint FROM _b t WHERE NOT EXISTS (SELECT 1 FROM"
            f" erp_sync_state s WHERE s.entity_id = {ENTITY_ID} AND s.bk_hash = t.bk_hash)",
            params,
        )


# -- the run -----------------------------------------------------------------------


def _autocommit(engine: Engine, *statements: str) -> None:
    with engine.connect() as conn:
        auto = conn.execution_options(isolation_level="AUTOCOMMIT")
        for statement in statements:
            auto.exec_driver_sql(statement)


def main() -> None:
    """Start a durable PostgreSQL, load it, time the hot path."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baselines", action="store_true", help="also time the designs replaced")
    args = parser.parse_args()
    n, k, repeat, before = args.rows, args.small, args.repeat, args.baselines

    print(_machine())
    full = records(n)
    with (
        postgres_cluster(durable=True) as cluster,
        StateStore(cluster.create_database("bench")) as store,
    ):
        store.migrate()
        engine = store.engine
        version = ".".join(map(str, engine.dialect.server_version_info or ()))
        print(f"PostgreSQL {version}, durable (fsync, synchronous_commit, full_page_writes on)")

        def empty() -> None:
            _autocommit(engine, "TRUNCATE erp_sync_state", "CHECKPOINT")

        print(f"upsert_state: {n:,} new rows into an empty entity (CHECKPOINT before each)")
        timed(
            "store: key-sorted COPY straight into the table",
            lambda: store.upsert_state(ENTITY, full, 1),
            repeat,
            empty,
        )
        if before:
            timed(
                "before: staging + ON CONFLICT, arrival order",
                lambda: baseline_upsert_on_conflict(engine, full, 1),
                repeat,
                empty,
            )
            timed(
                "before: staging + ON CONFLICT, key-sorted",
                lambda: baseline_upsert_on_conflict(engine, full.sort("bk_hash"), 1),
                repeat,
                empty,
            )

        empty()
        store.upsert_state(ENTITY, full, 1)
        _autocommit(engine, "VACUUM ANALYZE erp_sync_state")

        print(f"load_state: {n:,} rows")
        timed(
            "store: binary COPY, drained from libpq, parsed meanwhile",
            lambda: store.load_state(ENTITY),
            repeat,
        )
        if before:
            timed(
                "before: same binary COPY, parsed after",
                lambda: baseline_load_binary_then_parse(engine),
                repeat,
            )
            timed(
                "before: psycopg Copy iterator, server-made hex CSV",
                lambda: baseline_load_csv(engine),
                repeat,
            )

        rounds = iter(range(1, 1_000))

        def small_batch() -> pl.DataFrame:
            r = next(rounds)  # half updates of existing keys, half new keys
            changed = full.slice(r * k, k // 2).with_columns(data_hash=pl.lit("00" * 32))
            return pl.concat([changed, records(k - k // 2, offset=n + r * k)])

        print(f"upsert_state: {k:,} rows ({k // 2:,} updates, {k - k // 2:,} inserts) into {n:,}")
        timed(
            "store: staging + key-sorted ON CONFLICT",
            lambda: store.upsert_state(ENTITY, small_batch(), 2),
            repeat,
        )
        if before:
            timed(
                "before: staging + UPDATE + anti-join INSERT",
                lambda: baseline_upsert_update_insert(engine, small_batch(), 2),
                repeat,
            )

        print(f"load_state_for: {k:,} keys (90% present) of {n:,}")
        samples = iter(
            pl.concat(
                [
                    full["bk_hash"].sample(k - k // 10, seed=s),
                    records(k // 10, (s + 5) * n)["bk_hash"],
                ]
            )
            for s in range(repeat)
        )
        timed(
            "store: keys COPYed to a temp table, joined, binary COPY out",
            lambda: store.load_state_for(ENTITY, next(samples)),
            repeat,
        )


if __name__ == "__main__":
    main()
