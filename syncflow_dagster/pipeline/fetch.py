"""Step 1, fetch: open a batch and read the run's records (and, on full runs, the keys)."""

import time
from concurrent.futures import ThreadPoolExecutor

import polars as pl

from syncflow_dagster.config.loader import ConfigError, EntityCatalog
from syncflow_dagster.edges.apismith import ApiSmithClient
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.pipeline.slice import Mode, SyncSlice
from syncflow_dagster.stages.failures import ROW


def source_columns(catalog: EntityCatalog, entity: str, client: ApiSmithClient) -> dict[str, str]:
    """The entity's source column types: from its YAML, else from APISmith's /entities.

    Raises:
        ConfigError: naming the file, entity and field when a configured column
            does not exist at the source.
    """
    cfg = catalog[entity]
    declared = cfg.source.columns
    if declared is not None:
        return dict(declared)
    described = client.entity(cfg.source.entity)
    try:
        cfg.check_columns(described.columns)
    except ValueError as exc:
        raise ConfigError(f"{catalog.where(entity, 'source.columns')}: {exc} at APISmith") from None
    return dict(described.columns)


def start_window(store: StateStore, entity: str, mode: Mode, has_rowversion: bool) -> int | None:
    """The rowversion to read above: the last settled watermark (None: read everything)."""
    if mode == "full" or not has_rowversion:
        return None
    return store.last_watermark(entity)


def fetch_step(
    catalog: EntityCatalog,
    entity: str,
    client: ApiSmithClient,
    store: StateStore,
    run_id: str,
    mode: Mode,
    partition_key: str | None = None,
    max_rows: int | None = None,
) -> SyncSlice:
    """Open the batch and fetch the slice: records above the watermark, keys on full runs."""
    began = time.monotonic()
    cfg = catalog[entity]
    columns = source_columns(catalog, entity, client)
    if cfg.source.rowversion is None:
        mode = "full"
    since = start_window(store, entity, mode, cfg.source.rowversion is not None)
    version = store.register_mapping(entity, cfg.model_dump(mode="json", by_alias=True))
    batch_id = store.start_batch(
        entity=entity, run_id=run_id, mode=mode, partition_key=partition_key, mapping_version=version
    )
    limit = max_rows or cfg.sync.max_rows_per_run
    with ThreadPoolExecutor(1, thread_name_prefix="apismith-keys") as pool:
        keys = pool.submit(client.keys, cfg.source.entity, cfg.source.key) if mode == "full" else None
        fetched = client.fetch(cfg.source.entity, cfg.read_columns, since_rowversion=since, max_rows=limit)
        present = keys.result() if keys is not None else None
    raw = fetched.frame.with_row_index(ROW)
    return SyncSlice(
        entity=entity,
        batch_id=batch_id,
        mode=mode,
        source_columns=columns,
        since_rowversion=since,
        truncated=fetched.truncated,
        raw=raw,
        frame=raw,
        present_keys=present,
    ).advance("fetch", began, metrics={"fetched": raw.height})


def empty_raw(columns: list[str]) -> pl.DataFrame:
    """A raw frame with no records (for tests and empty runs)."""
    return pl.DataFrame(schema=dict.fromkeys(columns, pl.String())).with_row_index(ROW)
