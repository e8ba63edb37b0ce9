"""Step 5, identity: BK_HASH, DATA_HASH and the parents' BK_HASHes of every record."""

import time

import polars as pl

from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.pipeline.slice import SyncSlice
from syncflow_dagster.stages.identity import bk_hash_expr, with_bk_hash, with_data_hash
from syncflow_dagster.stages.resolve import parent_column


def with_parent_hashes(frame: pl.DataFrame, catalog: EntityCatalog, entity: str) -> pl.DataFrame:
    """Add ``_parent_<entity>``: the parent's BK_HASH, null when a parent column is empty."""
    exprs = [
        bk_hash_expr(p.entity, p.columns, frame.schema).alias(parent_column(p.entity))
        for p in catalog[entity].parents
    ]
    return frame.with_columns(exprs) if exprs else frame


def identity_step(s: SyncSlice, catalog: EntityCatalog) -> SyncSlice:
    """Hash every record's business key, its mapped data and its parents' keys."""
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
    # Source columns are spent: hashes, rowversion and target fields go on.
    spent = [
        c
        for c in (
            *cfg.source.key,
            *(p for q in cfg.parents for p in q.columns),
            *([cfg.source.rowversion] if cfg.source.rowversion else []),
        )
        if c in frame.columns and c not in {f.name for f in cfg.target.fields}
    ]
    return s.advance("identity", began, frame=frame.drop(spent))
