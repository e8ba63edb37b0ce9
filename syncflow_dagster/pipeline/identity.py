"""Step 5, identity: BK_HASH, DATA_HASH and the parents' BK_HASHes of every record."""

import time

import polars as pl

from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.pipeline.slice import SyncSlice
from syncflow_dagster.pipeline.transform import column_specs
from syncflow_dagster.stages.identity import bk_hash_expr, with_bk_hash, with_data_hash
from syncflow_dagster.stages.normalize import normalize
from syncflow_dagster.stages.resolve import parent_column


def with_parent_hashes(frame: pl.DataFrame, catalog: EntityCatalog, entity: str) -> pl.DataFrame:
    """Add ``_parent_<entity>``: the parent's BK_HASH, null when a parent column is empty."""
    exprs = [
        bk_hash_expr(p.entity, p.columns, frame.schema).alias(parent_column(p.entity))
        for p in catalog[entity].parents
    ]
    return frame.with_columns(exprs) if exprs else frame


def present_hashes(s: SyncSlice, catalog: EntityCatalog, default_tz: str) -> pl.Series | None:
    """BK_HASHes of the keys APISmith lists (full runs); unreadable keys are left out."""
    if s.present_keys is None:
        return None
    cfg = catalog[s.entity]
    specs = [spec for spec in column_specs(cfg, s.source_columns) if spec.name in cfg.source.key]
    keys = s.present_keys.with_row_index("_row")
    result = normalize(keys, specs, cfg.source.timezone or default_tz)
    readable = result.frame.drop_nulls(list(cfg.source.key))
    return with_bk_hash(readable, s.entity, cfg.source.key).get_column("bk_hash")


def identity_step(s: SyncSlice, catalog: EntityCatalog, default_tz: str) -> SyncSlice:
    """Hash every record's business key and mapped data; hash the keys of full runs."""
    began = time.monotonic()
    cfg = catalog[s.entity]
    rowversion = (
        pl.col(cfg.source.rowversion).cast(pl.Int64)
        if cfg.source.rowversion
        else pl.lit(None, dtype=pl.Int64)
    )
    frame = with_data_hash(
        with_bk_hash(s.frame, s.entity, cfg.source.key), [f.name for f in cfg.target.fields]
    ).with_columns(rowversion.alias("rowversion"))
    frame = with_parent_hashes(frame, catalog, s.entity)
    present = present_hashes(s, catalog, default_tz)
    return s.advance(
        "identity",
        began,
        frame=frame,
        present_keys=None if present is None else pl.DataFrame({"bk_hash": present}),
    )
