"""After an unclean run: bring the sync state in line with what the hub really holds.

A run that sent records without recording every answer (killed, responses
lost, retries exhausted) may have changed the hub unseen: the state then lags
the hub. Before reading anything, the entity's next run reads the hub's own
records (external_id and data_hash) and corrects the state so that it says
what the hub has:

* the hub has a record the state does not know → state row with the hub's
  hash (and no rowversion, so it is never settled by rowversion);
* the state has a record the hub does not → state row deleted (it is sent again);
* both, with another hash → the hub's hash, no rowversion.

The unclean batch never advanced the watermark, so its records are read
again, and the run compares keys for deletes: whatever the ERP did in between
(deletes, reverts, re-inserts), the delta then sends exactly what makes the
hub equal to the ERP.
"""

import logging

import polars as pl

from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.edges.state import StateStore

log = logging.getLogger(__name__)


def hub_hashes(hub: ScheduleHubClient, hub_entity: str) -> pl.DataFrame:
    """``bk_hash`` and ``data_hash`` of every record the hub stores for ``hub_entity``."""
    ids: list[str] = []
    hashes: list[str] = []
    for record in hub.records(hub_entity):
        ids.append(record["external_id"])
        hashes.append(record["data_hash"])
    return pl.DataFrame(
        {"bk_hash": ids, "data_hash": hashes}, schema={"bk_hash": pl.String, "data_hash": pl.String}
    )


def state_corrections(state: pl.DataFrame, at_hub: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series]:
    """What to write and what to delete so that ``state`` says what ``at_hub`` holds.

    Returns:
        (rows to upsert: bk_hash, data_hash, null rowversion; keys to delete).
    """
    joined = at_hub.join(
        state.select("bk_hash", pl.col("data_hash").alias("_state_hash")), on="bk_hash", how="left"
    )
    upsert = joined.filter(pl.col("_state_hash").ne_missing(pl.col("data_hash"))).select(
        "bk_hash", "data_hash", pl.lit(None, pl.Int64).alias("rowversion")
    )
    gone = state.join(at_hub.select("bk_hash"), on="bk_hash", how="anti").get_column("bk_hash")
    return upsert, gone


def reconcile_with_hub(
    store: StateStore,
    hub: ScheduleHubClient,
    catalog: EntityCatalog,
    entity: str,
    batch_id: int,
) -> int:
    """Correct the state from the hub if an earlier batch ended with unsettled sends.

    Returns:
        How many state rows changed (0 when there was nothing to reconcile).
    """
    unclean = store.unreconciled_batches(entity)
    if not unclean:
        return 0
    at_hub = hub_hashes(hub, catalog[entity].target.entity)
    upsert, gone = state_corrections(store.load_state(entity), at_hub)
    if upsert.height:
        store.upsert_state(entity, upsert, batch_id)
    if gone.len():
        store.delete_state(entity, gone)
    store.mark_reconciled(unclean, batch_id)
    changed = upsert.height + gone.len()
    log.warning(
        "%s: batch(es) %s ended with sends the hub may have applied unseen; the state was "
        "corrected from the hub's %d records (%d rows written, %d removed)",
        entity,
        ", ".join(map(str, unclean)),
        at_hub.height,
        upsert.height,
        gone.len(),
    )
    return changed
