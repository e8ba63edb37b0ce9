"""Business keys read early: BK_HASHes of fetched rows and of APISmith's key listing."""

from collections.abc import Mapping

import polars as pl

from syncflow_dagster.config.models import EntityConfig
from syncflow_dagster.stages.failures import ROW
from syncflow_dagster.stages.identity import bk_hash_expr
from syncflow_dagster.stages.normalize import ColumnSpec, normalize


def key_hashes(
    frame: pl.DataFrame, cfg: EntityConfig, types: Mapping[str, str], tz: str
) -> pl.DataFrame:
    """``_row`` and ``bk_hash`` of every row whose key columns normalize (others are left out).

    Only the key columns are normalized here, which is cheap; the rows keep
    their full normalization for later.
    """
    key = list(cfg.source.key)
    specs = [ColumnSpec(name, types[name]) for name in key]
    rows = (
        frame.select(ROW, *key) if ROW in frame.columns else frame.select(key).with_row_index(ROW)
    )
    readable = normalize(rows, specs, tz).frame.drop_nulls(key)
    return readable.select(ROW, bk_hash_expr(cfg.name, key, readable.schema).alias("bk_hash"))
