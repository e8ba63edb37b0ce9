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


def hub_records(hub: ScheduleHubClient, entity: str) -> dict[str, dict[str, Any]]:
    """Every record the hub stores for an entity, by external id (read over HTTP)."""
    return {r["external_id"]: r for r in hub.records(entity)}


def reconcile(
    hub: ScheduleHubClient,
    catalog: EntityCatalog,
    expected: Mapping[str, pl.DataFrame],
    entities: Sequence[str] | None = None,
    sample: int | None = None,
) -> Reconciliation:
    """Compare the hub's records (read over HTTP) with the expectation, entity by entity.

    Ids and data hashes are compared for every record; the data itself for
    every record, or for a random ``sample`` of them.
    """
    result = Reconciliation()
    for cfg in catalog:
        if entities is not None and cfg.name not in entities:
            continue
        want = expected[cfg.name]
        have = hub_records(hub, cfg.target.entity)
        result.counts[cfg.name] = (len(have), want.height)
        held = pl.DataFrame(
            {"bk_hash": list(have), "stored_hash": [r["data_hash"] for r in have.values()]},
            schema={"bk_hash": pl.String, "stored_hash": pl.String},
        )
        joined = want.join(held, on="bk_hash", how="full", coalesce=True)
        missing = joined.filter(pl.col("stored_hash").is_null()).get_column("bk_hash")
        extra = joined.filter(pl.col("data_hash").is_null()).get_column("bk_hash")
        differ = joined.filter(pl.col("stored_hash") != pl.col("data_hash")).height
        if missing.len():
            result.problems.append(
                f"{cfg.name}: {missing.len()} expected record(s) missing at the hub, "
                f"e.g. {missing.head(3).to_list()}"
            )
        if extra.len():
            result.problems.append(
                f"{cfg.name}: {extra.len()} record(s) at the hub that the ERP does not hold, "
                f"e.g. {extra.head(3).to_list()}"
            )
        checked = want if sample is None or sample >= want.height else want.sample(sample, seed=1)
        wrong = differ  # data hashes that differ; below, data that differs under an equal hash
        for bk, data_hash, line in checked.select("bk_hash", "data_hash", "_line").iter_rows():
            stored = have.get(bk)
            if stored is None or stored["data_hash"] != data_hash:
                continue
            doc = orjson.loads(line)
            parents = sorted(map(orjson.dumps, stored["parents"])) != sorted(
                map(orjson.dumps, doc["parents"])
            )
            if stored["data"] != doc["data"] or parents:
                wrong += 1
        if wrong:
            result.problems.append(f"{cfg.name}: {wrong} record(s) differ from the ERP's data")
    return result
