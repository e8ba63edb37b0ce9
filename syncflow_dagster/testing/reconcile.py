"""Whether the hub holds exactly what the ERP says it should: for the demo and the tests.

The expectation starts from the emulator's *ground truth* — the typed values the
ERP rendered in its many forms — so it does not go through the normalizer it
checks. From the ground truth:

* rows with a bad value (unreadable number or date, empty key, over-length
  text, due before start) are left out: they belong in the dead-letter table;
* of rows sharing a business key, the one with the highest rowversion stays;
* the configured mapping and identity give each row its expected data and hashes;
* a child is expected only when every parent it names is expected too
  (parent-first), otherwise it waits in pending_children.

The hub's records, read back over its HTTP API, must then match one for one:
same external ids, same data hashes, same data.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import polars as pl

from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.emulators.apismith import ErpDataset
from syncflow_dagster.pipeline.identity import with_parent_hashes
from syncflow_dagster.stages.encode import upsert_line
from syncflow_dagster.stages.failures import ROW
from syncflow_dagster.stages.identity import with_bk_hash, with_data_hash
from syncflow_dagster.stages.mapping import map_records
from syncflow_dagster.stages.resolve import parent_column
from syncflow_dagster.stages.timezones import wall_clock_to_utc

VALUE_BAD = ("bad_number", "bad_date", "empty_key", "over_length", "due_before_start")


def _as_normalized(truth: pl.DataFrame, tz: str) -> pl.DataFrame:
    """Ground-truth dtypes as the normalizer produces them."""
    exprs = []
    for name, dtype in truth.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Decimal):
            exprs.append(col.cast(pl.Float64))
        elif isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
            exprs.append(wall_clock_to_utc(col, tz))
        else:
            exprs.append(col)
    return truth.select(exprs)


def expected_records(
    dataset: ErpDataset, catalog: EntityCatalog, default_tz: str, required: Mapping[str, set[str]]
) -> dict[str, pl.DataFrame]:
    """Per entity: bk_hash, data_hash and the ingest line of every record the hub should hold."""
    expected: dict[str, pl.DataFrame] = {}
    for cfg in catalog:
        tz = cfg.source.timezone or default_tz
        truth = dataset.ground_truth(cfg.source.entity)
        rv = cfg.source.rowversion
        usable = truth.filter(pl.col("_bad").is_null() | ~pl.col("_bad").is_in(list(VALUE_BAD)))
        if rv:
            usable = usable.sort(rv).unique(list(cfg.source.key), keep="last", maintain_order=True)
        frame = _as_normalized(usable.drop("_bad", "_bad_column", "_rid"), tz).with_row_index(ROW)
        mapped = map_records(frame, cfg, tz, required.get(cfg.name, set()))
        fields = [f.name for f in cfg.target.fields]
        hashed = with_parent_hashes(
            with_data_hash(with_bk_hash(mapped.frame, cfg.name, cfg.source.key), fields),
            catalog,
            cfg.name,
        )
        for parent in cfg.parents:
            col = pl.col(parent_column(parent.entity))
            known = expected[parent.entity].get_column("bk_hash")
            hashed = hashed.filter(col.is_null() | col.is_in(known.implode()))
        hub_parents = [
            (catalog[p.entity].target.entity, parent_column(p.entity)) for p in cfg.parents
        ]
        expected[cfg.name] = hashed.select("bk_hash", "data_hash", upsert_line(fields, hub_parents))
    return expected


@dataclass
class Reconciliation:
    """What the hub holds against what it should, per entity."""

    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every entity matches."""
        return not self.problems


@dataclass
class HubRecords:
    """What the hub holds of an entity: every id and data hash; whole records of a sample."""

    hashes: pl.DataFrame
    """``bk_hash`` (the external id) and ``stored_hash``."""
    sampled: dict[str, dict[str, Any]]


def read_hub(hub: ScheduleHubClient, entity: str, share: float) -> HubRecords:
    """Read every record of ``entity`` over HTTP, keeping about ``share`` of them whole.

    The sample is the records whose id (a hex hash) falls in the lowest
    ``share`` of its range: uniform, and the same on every run.
    """
    keep_all = share >= 1.0
    below = int(share * 2**32)
    frames: list[pl.DataFrame] = []
    ids: list[str] = []
    hashes: list[str] = []
    sampled: dict[str, dict[str, Any]] = {}

    def flush() -> None:
        frames.append(
            pl.DataFrame(
                {"bk_hash": ids, "stored_hash": hashes},
                schema={"bk_hash": pl.String, "stored_hash": pl.String},
            )
        )
        ids.clear()
        hashes.clear()

    for record in hub.records(entity):
        external_id = record["external_id"]
        ids.append(external_id)
        hashes.append(record["data_hash"])
        if keep_all or int(external_id[:8], 16) < below:
            sampled[external_id] = record
        if len(ids) >= 200_000:
            flush()
    flush()
    return HubRecords(pl.concat(frames), sampled)


def compare_with_hub(
    name: str, want: pl.DataFrame, have: HubRecords, result: Reconciliation
) -> int:
    """Check what ``read_hub`` kept against the expectation; problems go to ``result``.

    Every external id and data hash; the data and parents of the sampled
    records. Returns how many records' data was compared.
    """
    held = have.hashes
    result.counts[name] = (held.height, want.height)
    repeated = held.height - held.get_column("bk_hash").n_unique()
    if repeated:
        result.problems.append(f"{name}: the hub listed {repeated} record(s) twice")
    joined = want.select("bk_hash", "data_hash").join(held, on="bk_hash", how="full", coalesce=True)
    missing = joined.filter(pl.col("stored_hash").is_null()).get_column("bk_hash")
    extra = joined.filter(pl.col("data_hash").is_null()).get_column("bk_hash")
    wrong = joined.filter(pl.col("stored_hash") != pl.col("data_hash")).height
    if missing.len():
        result.problems.append(
            f"{name}: {missing.len()} expected record(s) missing at the hub, "
            f"e.g. {missing.head(3).to_list()}"
        )
    if extra.len():
        result.problems.append(
            f"{name}: {extra.len()} record(s) at the hub that the ERP does not hold, "
            f"e.g. {extra.head(3).to_list()}"
        )
    checked = want.filter(pl.col("bk_hash").is_in(list(have.sampled)))
    for bk, data_hash, line in checked.select("bk_hash", "data_hash", "_line").iter_rows():
        stored = have.sampled[bk]
        if stored["data_hash"] != data_hash:
            continue  # counted above
        doc = orjson.loads(line)
        parents = sorted(map(orjson.dumps, stored["parents"])) != sorted(
            map(orjson.dumps, doc["parents"])
        )
        if stored["data"] != doc["data"] or parents:
            wrong += 1
    if wrong:
        result.problems.append(f"{name}: {wrong} record(s) differ from the ERP's data")
    return checked.height


def reconcile(
    hub: ScheduleHubClient,
    catalog: EntityCatalog,
    expected: Mapping[str, pl.DataFrame],
    entities: Sequence[str] | None = None,
    sample: int | None = None,
) -> Reconciliation:
    """Compare the hub's records (read over HTTP) with the expectation, entity by entity.

    Ids and data hashes are compared for every record; the data itself for
    every record, or for about ``sample`` of them (a fixed slice of the ids).
    """
    result = Reconciliation()
    for cfg in catalog:
        if entities is not None and cfg.name not in entities:
            continue
        want = expected[cfg.name]
        share = 1.0 if sample is None else sample / max(1, want.height)
        compare_with_hub(cfg.name, want, read_hub(hub, cfg.target.entity, share), result)
    return result
