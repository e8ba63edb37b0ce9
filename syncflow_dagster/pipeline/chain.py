"""Steps 2–9 in one call, for runs that take a slice through the stages without Dagster ops.

The sync jobs run each step as an op of its own (so the UI shows them); a
background run works through a night in chunks inside one op, and uses this.
"""

from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.pipeline.backoff import Backoff
from syncflow_dagster.pipeline.delta import delta_step
from syncflow_dagster.pipeline.identity import identity_step
from syncflow_dagster.pipeline.ingest import ingest_step
from syncflow_dagster.pipeline.resolve import resolve_step
from syncflow_dagster.pipeline.slice import SyncSlice
from syncflow_dagster.pipeline.track import track_step
from syncflow_dagster.pipeline.transform import (
    check_against_hub,
    map_step,
    normalize_step,
    validate_step,
)


def after_fetch(
    s: SyncSlice,
    catalog: EntityCatalog,
    hub: ScheduleHubClient,
    store: StateStore,
    batch_size: int,
    default_tz: str,
    backoff: Backoff | None = None,
    close: bool = True,
) -> SyncSlice:
    """Normalize → validate → map → identity → delta → resolve → ingest → track."""
    required = check_against_hub(catalog, s.entity, hub.entities())
    s = normalize_step(s, catalog, default_tz)
    s = validate_step(s, catalog, default_tz)
    s = map_step(s, catalog, default_tz, required)
    s = identity_step(s, catalog)
    s = delta_step(s, store)
    s = resolve_step(s, catalog, store)
    s = ingest_step(s, catalog, hub, store, batch_size, default_tz)
    return track_step(s, catalog, store, default_tz, backoff, close=close)
