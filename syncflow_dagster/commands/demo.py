"""`syncflow demo` (`make demo`): the main job, end to end, on the embedded default.

Starts both emulators, runs every entity's job through Dagster on the local
instance (SQLite state under DATA_DIR), changes the ERP, syncs again, and
checks after each round that the hub holds exactly what the ERP says it should.
Exits non-zero when a run fails or anything does not reconcile.
"""

import argparse
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import polars as pl

from syncflow_dagster.config.loader import load_catalog
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.metrics import METRIC_NAMES
from syncflow_dagster.orchestration.build import build_definitions
from syncflow_dagster.orchestration.factories.sync_job import sync_all_run_config, sync_job_name
from syncflow_dagster.paths import PROJECT_DIR
from syncflow_dagster.settings import Settings, load_settings

if TYPE_CHECKING:
    # The demo runs on the sandbox (emulators, reconciliation): imported inside the
    # functions that use it, so that importing the command line never loads it.
    from syncflow_dagster.emulators.apismith import ErpDataset

SHOWN = [m for m in METRIC_NAMES if m != "duration_ms"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of the command."""
    parser.add_argument("--rows", type=int, default=20_000, help="work orders in the ERP")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--bad-fraction", type=float, default=0.005)


def _instance(settings: Settings) -> dg.DagsterInstance:
    """The local Dagster instance that `make ui` shows (DAGSTER_HOME, default DATA_DIR/dagster)."""
    if not os.environ.get("DAGSTER_HOME"):
        home = (settings.data_dir / "dagster").resolve()
        home.mkdir(parents=True, exist_ok=True)
        link = home / "dagster.yaml"
        if not link.exists():
            link.symlink_to(PROJECT_DIR / "dagster.yaml")
        os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


@contextmanager
def _emulators(settings: Settings, args: argparse.Namespace) -> Iterator[tuple[Any, Any]]:
    # The sandbox, loaded only when the demo runs (the product never imports it).
    from syncflow_dagster.emulators.apismith import DatasetSpec  # noqa: PLC0415
    from syncflow_dagster.testing.apismith import running_apismith  # noqa: PLC0415
    from syncflow_dagster.testing.schedulehub import running_schedulehub  # noqa: PLC0415

    spec = DatasetSpec(
        seed=args.seed,
        work_orders=args.rows,
        bad_fraction=args.bad_fraction,
        erp_timezone=settings.erp_timezone,
    )
    hub_db = settings.data_dir / "schedulehub.db"
    for path in (hub_db, Path(f"{hub_db}-wal"), Path(f"{hub_db}-shm")):
        path.unlink(missing_ok=True)
    with (
        running_apismith(spec, token=settings.apismith_token.get_secret_value()) as api,
        running_schedulehub(
            db_path=hub_db, token=settings.schedulehub_token.get_secret_value()
        ) as hub,
    ):
        yield api, hub


def _fresh_state(settings: Settings) -> StateStore:
    if settings.state_db_url.get_backend_name() == "sqlite":
        db = Path(settings.state_db_url.database or "")
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            path.unlink(missing_ok=True)
    store = StateStore(settings.state_db_url, pool_size=settings.postgres_pool_size)
    store.migrate()
    return store


def _round_metrics(
    store: StateStore, entities: list[str], since_id: int
) -> dict[str, dict[str, int]]:
    """Per entity, the metrics of the round's batches added up (a sync batch plus retries)."""
    out: dict[str, dict[str, int]] = {}
    for entity in entities:
        total = dict.fromkeys(METRIC_NAMES, 0)
        for batch in store.recent_batches(entity, limit=50):
            if batch["id"] > since_id:
                for m in METRIC_NAMES:
                    total[m] += int(batch.get(m) or 0)
        out[entity] = total
    return out


def _print_tables(rounds: list[tuple[str, dict[str, dict[str, int]]]], entities: list[str]) -> None:
    for entity in entities:
        print(f"\n{entity}")
        header = f"  {'metric':<20}" + "".join(f"{title:>16}" for title, _ in rounds)
        print(header)
        print("  " + "-" * (len(header) - 2))
        for m in SHOWN:
            print(f"  {m:<20}" + "".join(f"{r[entity][m]:>16,}" for _, r in rounds))


def _change_the_erp(dataset: "ErpDataset") -> list[str]:
    """Updates, inserts, deletes, and a child inserted before its parent."""
    notes = []
    updated = dataset.update(
        "work_orders", max(dataset.ground_truth("work_orders").height // 50, 1), seed=11
    )
    notes.append(f"updated {len(updated)} work orders")
    notes.append(f"updated {len(dataset.update('items', 10, seed=12))} items")
    notes.append(f"inserted {len(dataset.insert('items', 5, seed=13))} items")
    notes.append(f"inserted {len(dataset.insert('work_orders', 40, seed=14))} work orders")
    gone = dataset.ground_truth("work_orders").filter(pl.col("_bad").is_null()).head(3)
    gone_keys = [[k] for k in gone.get_column("WO_NO").to_list()]
    ops = dataset.ground_truth("work_order_operations").filter(
        pl.col("WO_NO").is_in(gone.get_column("WO_NO").implode())
    )
    dataset.delete_keys("work_order_operations", ops.select("WO_NO", "OP_SEQ").rows())
    dataset.delete_keys("work_orders", gone_keys)
    notes.append(f"deleted {len(gone_keys)} work orders with their {ops.height} operations")
    notes.append(
        f"deleted {len(dataset.delete('work_order_operations', 20, seed=15))} more operations"
    )
    dataset.insert_rows("work_orders", [{"WO_NO": "WO-DEMO0001", "ITEM_NO": "ITM-DEMO01"}])
    notes.append(
        "inserted work order WO-DEMO0001 for item ITM-DEMO01, which the ERP has not got yet"
    )
    return notes


def run(args: argparse.Namespace) -> int:
    """Three rounds: initial load; ERP changes; the missing parent arrives."""
    from syncflow_dagster.testing.reconcile import expected_records, reconcile  # noqa: PLC0415

    base = load_settings()
    base.data_dir.mkdir(parents=True, exist_ok=True)
    instance = _instance(base)
    store = _fresh_state(base)
    failures: list[str] = []
    with _emulators(base, args) as (api, hub_server):
        settings = load_settings(apismith_url=api.url, schedulehub_url=hub_server.url)
        print(f"APISmith emulator at {api.url}, ScheduleHub emulator at {hub_server.url}")
        print(
            f"state: {settings.state_db_url.render_as_string(hide_password=True)}; "
            f"Dagster instance: {os.environ['DAGSTER_HOME']}"
        )
        defs = build_definitions(settings)
        catalog = load_catalog(settings.entities_dir)
        partitions = defs.get_job_def("sync_all_job").partitions_def
        assert partitions is not None
        partition = partitions.get_last_partition_key()
        entities = catalog.parent_first()
        hub = ScheduleHubClient(hub_server.url, hub_server.token)
        required = {
            c.name: {n for n, f in hub.entities()[c.target.entity].fields.items() if f.required}
            for c in catalog
        }
        rounds: list[tuple[str, dict[str, dict[str, int]]]] = []

        def sync(
            title: str,
            jobs: list[str],
            tags: dict[str, str],
            run_config: dict[str, Any] | None = None,
        ) -> None:
            mark = max(
                (b["id"] for e in entities for b in store.recent_batches(e, limit=1)), default=0
            )
            started = time.monotonic()
            for name in jobs:
                result = defs.get_job_def(name).execute_in_process(
                    run_config=run_config,
                    instance=instance,
                    partition_key=partition,
                    tags=tags,
                    raise_on_error=False,
                )
                if not result.success:
                    failures.append(f"{title}: run of {name} failed ({result.run_id})")
            print(
                f"\n== {title}: {len(jobs)} Dagster run(s), partition {partition}, "
                f"{time.monotonic() - started:.1f}s"
            )
            rounds.append((title, _round_metrics(store, entities, mark)))
            check = reconcile(
                hub,
                catalog,
                expected_records(api.dataset, catalog, settings.erp_timezone, required),
            )
            for entity, (have, want) in check.counts.items():
                print(f"   {entity:<24} hub holds {have:>7,}   ERP says {want:>7,}")
            print(
                "   reconciled" if check.ok else "   NOT reconciled: " + "; ".join(check.problems)
            )
            failures.extend(f"{title}: {p}" for p in check.problems)

        sync("round 1", [sync_job_name(e) for e in entities], {"syncflow/demo": "initial load"})
        notes = _change_the_erp(api.dataset)
        print("\nERP changes: " + "; ".join(notes))
        # A full pass: deletes are found by comparing APISmith's key listing with the state.
        sync(
            "round 2",
            ["sync_all_job"],
            {"syncflow/demo": "after changes"},
            sync_all_run_config(catalog, mode="full"),
        )
        api.dataset.insert_rows("items", [{"ITEM_NO": "ITM-DEMO01"}])
        print("\nERP changes: inserted item ITM-DEMO01, the parent WO-DEMO0001 waited for")
        sync("round 3", ["sync_all_job"], {"syncflow/demo": "parent arrives"})
        hub.close()
    _print_tables(rounds, entities)
    print()
    if failures:
        print("DEMO FAILED:\n  " + "\n  ".join(failures))
        return 1
    print(
        "Every round reconciled. See the runs in the Dagster UI: make ui  "
        "(dagster dev -w workspace.yaml, then http://127.0.0.1:3000)"
    )
    return 0
