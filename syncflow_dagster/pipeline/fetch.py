"""Step 1, fetch: open a batch and read the run's records (and, on full runs, the keys)."""

import time
from concurrent.futures import ThreadPoolExecutor

import polars as pl

from syncflow_dagster.config.loader import ConfigError, EntityCatalog
from syncflow_dagster.config.models import EntityConfig
from syncflow_dagster.edges.apismith import ApiSmithClient
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.pipeline.keys import key_hashes
from syncflow_dagster.pipeline.raw_spill import RawSpill
from syncflow_dagster.pipeline.slice import Mode, SyncSlice
from syncflow_dagster.stages.delta import compare_with_state, rows_mask
from syncflow_dagster.stages.failures import ROW

# Slices at least this big keep their raw form on disk once past the map step.
SPILL_ROWS = 100_000

# Raise when a release changes how records are normalized or mapped: every
# record is then mapped again instead of being taken as settled.
PIPELINE_REVISION = 1


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


def _stale_keys(store: StateStore, entity: str, version: int) -> pl.Series:
    """Keys whose state was written under an earlier mapping version (never settled)."""
    other = store.last_batch_of_other_mapping(entity, version)
    if other is None:
        return pl.Series("bk_hash", [], dtype=pl.String)
    return store.keys_stamped_through(entity, other)


def fetch_step(
    catalog: EntityCatalog,
    entity: str,
    client: ApiSmithClient,
    store: StateStore,
    run_id: str,
    mode: Mode,
    default_tz: str,
    partition_key: str | None = None,
    max_rows: int | None = None,
) -> SyncSlice:
    """Open the batch and fetch the slice: records above the watermark (all on full runs).

    Records the hub already has in this very version (same rowversion in the
    state, same mapping) are settled here as unchanged and go no further; a
    full run loads the entity's state while the records are on the wire.
    """
    began = time.monotonic()
    cfg = catalog[entity]
    columns = source_columns(catalog, entity, client)
    tz = cfg.source.timezone or default_tz
    if cfg.source.rowversion is None:
        mode = "full"
    version = store.register_mapping(entity, mapping_identity(cfg))
    stale = _stale_keys(store, entity, version)
    # Records mapped under another version must be read again, whatever the watermark.
    has_rowversion = cfg.source.rowversion is not None
    since = None if stale.len() else start_window(store, entity, mode, has_rowversion)
    batch_id = store.start_batch(
        entity=entity,
        run_id=run_id,
        mode=mode,
        partition_key=partition_key,
        mapping_version=version,
    )
    limit = max_rows or cfg.sync.max_rows_per_run
    with ThreadPoolExecutor(1, thread_name_prefix="state") as pool:
        whole_state = pool.submit(store.load_versions, entity) if mode == "full" else None
        fetched = client.fetch(
            cfg.source.entity, cfg.read_columns, since_rowversion=since, max_rows=limit
        )
        raw = fetched.frame.with_row_index(ROW)
        state = whole_state.result() if whole_state is not None else None
    if state is not None and state.height == 0:
        # Nothing synced yet (an initial load): nothing to settle, nothing to delete.
        return _slice(
            batch_id, entity, mode, columns, since, fetched.truncated, cfg, raw, state, stale
        ).advance("fetch", began, metrics={"fetched": raw.height})
    keys = key_hashes(raw, cfg, columns, tz)
    if state is None:
        state = store.load_state_for(entity, keys.get_column("bk_hash"))
    # Deletes are keys in the state the ERP no longer has. A full fetch that read
    # to the end has seen every key (the comparison finds them); one cut short by
    # the row limit asks APISmith's key listing (the delta step compares it).
    complete = mode == "full" and not fetched.truncated
    compared = compare_with_state(keys, _rowversions(raw, cfg), state, stale, complete)
    settled = compared.settled
    present = keys if complete else None
    if mode == "full" and fetched.truncated:
        present = key_hashes(client.keys(cfg.source.entity, cfg.source.key), cfg, columns, tz)
    return _slice(
        batch_id,
        entity,
        mode,
        columns,
        since,
        fetched.truncated,
        cfg,
        raw,
        state,
        stale,
        settled=settled,
        present=None if present is None else present.get_column("bk_hash"),
        fetched_keys=keys.get_column("bk_hash"),
        deletes=compared.gone,
    ).advance("fetch", began, metrics={"fetched": raw.height, "unchanged": settled.len()})


def _rowversions(raw: pl.DataFrame, cfg: EntityConfig) -> pl.Series:
    """Every fetched record's rowversion (null where the entity has none)."""
    if cfg.source.rowversion is None:
        return pl.Series([None] * raw.height, dtype=pl.Int64)
    return raw.get_column(cfg.source.rowversion).str.strip_chars().cast(pl.Int64, strict=False)


def _slice(
    batch_id: int,
    entity: str,
    mode: Mode,
    columns: dict[str, str],
    since: int | None,
    truncated: bool,
    cfg: EntityConfig,
    raw: pl.DataFrame,
    state: pl.DataFrame,
    stale: pl.Series,
    settled: pl.Series | None = None,
    present: pl.Series | None = None,
    fetched_keys: pl.Series | None = None,
    deletes: pl.DataFrame | None = None,
) -> SyncSlice:
    """The slice after fetch: settled records set aside, the rest to normalize."""
    todo = (
        raw.filter(~rows_mask(settled, raw.height))
        if settled is not None and settled.len()
        else raw
    )
    return SyncSlice(
        entity=entity,
        batch_id=batch_id,
        mode=mode,
        source_columns=columns,
        since_rowversion=since,
        truncated=truncated,
        top_rowversion=_rowversions(raw, cfg).max(),  # type: ignore[arg-type]
        raw=todo,
        raw_spill=RawSpill(todo) if todo.height >= SPILL_ROWS else None,
        frame=todo,
        state=state,
        stale_keys=stale,
        present_keys=None if present is None else present.to_frame("bk_hash"),
        fetched_keys=fetched_keys,
        deletes=deletes,
        delete_candidates=0 if deletes is None else deletes.height,
        settled=0 if settled is None else settled.len(),
    )


def mapping_identity(cfg: EntityConfig) -> dict[str, object]:
    """What decides how a record is mapped: the entity's configuration and the code's revision.

    Registered as the batch's mapping version; state written under another
    version is never taken as settled, so a change of either re-maps every record.
    """
    return {"pipeline_revision": PIPELINE_REVISION, **cfg.model_dump(mode="json", by_alias=True)}
