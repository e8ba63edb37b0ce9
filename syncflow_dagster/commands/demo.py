"""`syncflow demo` (`make demo`): the main job, end to end, and a local world left behind.

Builds a new local world under DATA_DIR (an ERP, an empty hub, the embedded
SQLite state, a Dagster instance), serves both emulators where the settings
point SyncFlow (APISMITH_URL, SCHEDULEHUB_URL), and syncs in three rounds,
each through real runs of the code location (launched through
``workspace.yaml`` as the UI launches them, so the UI's partition and asset
pages count them): every entity's job; after ERP changes, ``sync_all_job``;
after the missing parent arrives, ``sync_all_job`` again. After each round it
checks that the hub holds exactly what the ERP says it should. The world stays:
``make ui`` serves it. Exits non-zero when a run fails or anything does not
reconcile.
"""

import argparse
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import polars as pl

from syncflow_dagster.config.loader import load_catalog
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.metrics import METRIC_NAMES
from syncflow_dagster.orchestration.factories.sync_job import sync_all_run_config, sync_job_name
from syncflow_dagster.orchestration.partitions import nightly_partitions
from syncflow_dagster.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    # The demo runs on the sandbox (emulators, reconciliation, the local world):
    # imported inside the functions that use it, so that importing the command line
    # never loads it.
    from syncflow_dagster.emulators.apismith import ErpDataset
    from syncflow_dagster.testing.local_world import LocalWorld
    from syncflow_dagster.testing.workspace import WorkspaceRuns

SHOWN = [m for m in METRIC_NAMES if m != "duration_ms"]
ROUNDS = 3


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of the command."""
    parser.description = (
        "Build a new local world in DATA_DIR and sync it through Dagster in three rounds: "
        "round 1 loads every entity (one run of each entity's job); round 2 follows ERP "
        "changes (updates, inserts, deletes, a work order whose item does not exist yet) "
        "with one run of sync_all_job; round 3 follows the arrival of that item. After each "
        "round the hub is checked against the ERP. The world (ERP, hub, state, Dagster "
        "instance) stays for `make ui`; a later demo replaces it."
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=20_000,
        help="work orders in the generated ERP (default 20,000; items, work centers and "
        "operations are sized from it)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=42,
        help="seed of the generated ERP: the same seed gives the same data and tables (default 42)",
    )
    parser.add_argument(
        "--bad-fraction",
        type=float,
        default=0.005,
        help="share of ERP rows that are bad on purpose and end as dead letters (default 0.005)",
    )


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


def _summary(metrics: dict[str, int]) -> str:
    """One entity run's counts, in the words of the tables."""
    parts = [
        f"fetched {metrics['fetched']:,}",
        f"inserted {metrics['inserted']:,}",
        f"updated {metrics['updated']:,}",
        f"deleted {metrics['deleted']:,}",
        f"unchanged {metrics['unchanged']:,}",
    ]
    if metrics["pending_children"]:
        parts.append(f"waiting {metrics['pending_children']:,}")
    if metrics["dead_lettered"]:
        parts.append(f"dead letters {metrics['dead_lettered']:,}")
    return ", ".join(parts)


@contextmanager
def _world_emulators(
    world: "LocalWorld", settings: Settings, args: argparse.Namespace
) -> Iterator[tuple[Any, Any]]:
    """Both emulators in this process, where the settings point SyncFlow."""
    from syncflow_dagster.emulators.apismith import DatasetSpec  # noqa: PLC0415
    from syncflow_dagster.testing.apismith import running_apismith  # noqa: PLC0415
    from syncflow_dagster.testing.schedulehub import running_schedulehub  # noqa: PLC0415

    spec = DatasetSpec(
        seed=args.seed,
        work_orders=args.rows,
        bad_fraction=args.bad_fraction,
        erp_timezone=settings.erp_timezone,
    )
    with (
        running_apismith(
            spec,
            token=settings.apismith_token.get_secret_value(),
            port=world.endpoint("apismith")[1],
        ) as api,
        running_schedulehub(
            db_path=world.hub_db,
            token=settings.schedulehub_token.get_secret_value(),
            port=world.endpoint("schedulehub")[1],
        ) as hub,
    ):
        try:
            yield api, hub
        finally:
            # The ERP as the last round left it: what `make ui` serves next.
            api.dataset.save(world.erp)


class _Demo:
    """The rounds, their runs and what they print."""

    def __init__(
        self, settings: Settings, store: StateStore, runs: "WorkspaceRuns", api: Any, hub: Any
    ) -> None:
        self.settings = settings
        self.store = store
        self.runs = runs
        self.api = api
        self.catalog = load_catalog(settings.entities_dir)
        self.entities = self.catalog.parent_first()
        partitions = nightly_partitions(
            settings.erp_timezone, settings.background_sync_window_start
        )
        last = partitions.get_last_partition_key()
        assert last is not None  # the partitions began years ago
        self.partition = last
        self.hub = ScheduleHubClient(hub.url, hub.token)
        schemas = self.hub.entities()
        self.required = {
            c.name: {n for n, f in schemas[c.target.entity].fields.items() if f.required}
            for c in self.catalog
        }
        self.rounds: list[tuple[str, dict[str, dict[str, int]]]] = []
        self.failures: list[str] = []

    def sync(self, title: str, jobs: list[str], run_config: dict[str, Any] | None = None) -> None:
        """One round: ``jobs`` one after the other, then the check against the ERP."""
        from syncflow_dagster.testing.reconcile import expected_records, reconcile  # noqa: PLC0415

        mark = max(
            (b["id"] for e in self.entities for b in self.store.recent_batches(e, limit=1)),
            default=0,
        )
        print(f"\n== {title} (partition {self.partition})", flush=True)
        for job in jobs:
            self._run(title, job, run_config)
        self.rounds.append((title, _round_metrics(self.store, self.entities, mark)))
        check = reconcile(
            self.hub,
            self.catalog,
            expected_records(
                self.api.dataset, self.catalog, self.settings.erp_timezone, self.required
            ),
        )
        held = ", ".join(f"{e} {have:,}" for e, (have, _) in check.counts.items())
        if check.ok:
            print(f"   reconciled: the hub holds exactly what the ERP says ({held})", flush=True)
        else:
            print("   NOT reconciled: " + "; ".join(check.problems), flush=True)
        self.failures.extend(f"{title}: {p}" for p in check.problems)

    def _run(self, title: str, job: str, run_config: dict[str, Any] | None) -> None:
        started = time.monotonic()
        run_id = self.runs.launch(job, {"syncflow/demo": title}, run_config, self.partition)
        run = self.runs.wait(run_id)
        took = time.monotonic() - started
        status = run.status.value
        batches = [
            b
            for e in self.entities
            for b in self.store.recent_batches(e, limit=10)
            if b["run_id"] == run_id
        ]
        label = f"{job} run {run_id[:8]}"
        if len(batches) <= 1 or job != "sync_all_job":
            metrics = {m: sum(int(b[m] or 0) for b in batches) for m in METRIC_NAMES}
            print(f"   {label:<44} {status:<8} {took:5.1f} s   {_summary(metrics)}", flush=True)
        else:
            print(f"   {label:<44} {status:<8} {took:5.1f} s", flush=True)
            for entity in self.entities:
                mine = [b for b in batches if b["entity"] == entity]
                metrics = {m: sum(int(b[m] or 0) for b in mine) for m in METRIC_NAMES}
                print(f"     {entity:<24} {_summary(metrics)}", flush=True)
        if status != "SUCCESS":
            why = self.runs.failure(run_id)
            print(f"   {job} failed: {why}", flush=True)
            self.failures.append(f"{title}: run {run_id} of {job} ended {status}: {why}")


def run(args: argparse.Namespace) -> int:
    """Three rounds: initial load; ERP changes; the missing parent arrives."""
    from syncflow_dagster.testing.local_world import LocalWorld, WorldError  # noqa: PLC0415
    from syncflow_dagster.testing.workspace import workspace_runs  # noqa: PLC0415

    try:
        settings = load_settings()
        world = LocalWorld.from_settings(settings)
        ports = {title: world.endpoint(e) for title, e in _EMULATORS.items()}
    except (SettingsError, WorldError) as exc:
        print(f"syncflow demo: {exc}", file=sys.stderr)
        return 2
    if settings.state_db_url.get_backend_name() != "sqlite":
        print(
            "syncflow demo: the demo builds a new world on the embedded SQLite state in "
            "DATA_DIR, and never touches a PostgreSQL state (DATABASE_URL / POSTGRES_HOST "
            "are set): unset them for the demo",
            file=sys.stderr,
        )
        return 2
    busy = world.busy(ports)
    if busy:
        print(
            f"syncflow demo: {', '.join(busy)} in use: is the local world running (make ui, "
            "make emulators)? Stop it first (Ctrl-C there), or point APISMITH_URL / "
            "SCHEDULEHUB_URL at free loopback ports.",
            file=sys.stderr,
        )
        return 2
    started = time.monotonic()
    # Dagster's SQLite storages and the state store stamp their schemas through
    # alembic, which says so at INFO for every run's event log: not news here.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    world.reset()
    world.publish()
    world.data_dir.mkdir(parents=True, exist_ok=True)
    instance = world.instance()
    store = StateStore(settings.state_db_url, pool_size=settings.postgres_pool_size)
    store.migrate()
    log = world.logs / "demo.log"
    print(
        f"SyncFlow demo: a new local world in {world.data_dir} — an ERP of {args.rows:,} work "
        f"orders (seed {args.seed}), synced in {ROUNDS} rounds by runs of the code location.\n"
        f"state: {settings.state_db_url.render_as_string(hide_password=True)}; "
        f"Dagster instance: {world.dagster_home}; Dagster's own output: {log}",
        flush=True,
    )
    try:
        with (
            _world_emulators(world, settings, args) as (api, hub_server),
            workspace_runs(instance, log) as runs,
        ):
            print(f"APISmith emulator at {api.url}, ScheduleHub emulator at {hub_server.url}")
            demo = _Demo(settings, store, runs, api, hub_server)
            demo.sync("round 1", [sync_job_name(e) for e in demo.entities])
            notes = _change_the_erp(api.dataset)
            print("\nERP changes:\n   " + "\n   ".join(notes))
            demo.sync("round 2", ["sync_all_job"], sync_all_run_config(demo.catalog, mode="full"))
            api.dataset.insert_rows("items", [{"ITEM_NO": "ITM-DEMO01"}])
            print("\nERP changes:\n   inserted item ITM-DEMO01, the parent WO-DEMO0001 waited for")
            demo.sync("round 3", ["sync_all_job"])
            demo.hub.close()
    finally:
        store.dispose()
        instance.dispose()
    _print_tables(demo.rounds, demo.entities)
    print()
    if demo.failures:
        print("DEMO FAILED:\n  " + "\n  ".join(demo.failures))
        return 1
    print(
        f"Every round reconciled ({time.monotonic() - started:.0f} s). The local world stays in "
        f"{world.data_dir}: the ERP as round 3 left it, the hub, the state and the Dagster "
        "instance with these runs.\n"
        "Next: make ui   — the Dagster UI on http://127.0.0.1:3000 (make ui PORT=3001 for "
        "another port) with the daemon, the operations API and both emulators serving this "
        "world; change the ERP with `uv run syncflow emulators update work_orders 5` and launch "
        "a run to watch it flow (README: After the demo)."
    )
    return 0


_EMULATORS = {"APISmith (APISMITH_URL)": "apismith", "ScheduleHub (SCHEDULEHUB_URL)": "schedulehub"}
