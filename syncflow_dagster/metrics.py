"""The one registry of batch metric names.

Each name is a column of ``sync_batches``, a key of the run's Dagster metadata
and (as ``syncflow_batch_<name>_total``) a Prometheus counter; all three are
built from this table, as the Singer SDK builds its metrics from one module.

Conservation (checked by the track stage) uses the bucket metrics::

    fetched + resolved_children + delete_candidates
        == inserted + updated + deleted + unchanged + pending_children + dead_lettered
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """One batch metric: its name and what it counts."""

    name: str
    description: str
    unit: str = "records"


METRICS: tuple[Metric, ...] = (
    Metric("fetched", "records read from APISmith"),
    Metric("fetch_failed", "lines of a page that were not a readable record (dead-lettered)"),
    Metric("normalized", "records whose every value was read"),
    Metric("normalize_failed", "records with a value the normalizer could not read"),
    Metric("validated", "records that passed the entity's rules"),
    Metric("validation_failed", "records that broke a rule"),
    Metric("mapped", "records mapped to the hub's fields"),
    Metric("map_failed", "records that could not be mapped"),
    Metric("inserted", "records created at the hub"),
    Metric("updated", "records replaced at the hub"),
    Metric("deleted", "records deleted at the hub"),
    Metric("unchanged", "records the hub already had in this version (not sent)"),
    Metric("pending_children", "children waiting for a parent at the end of the run"),
    Metric("resolved_children", "waiting children taken up again by this run"),
    Metric("delete_candidates", "keys the state has and the ERP no longer lists"),
    Metric("expired_children", "waiting children given up (ERP row gone, or attempts spent)"),
    Metric("reconciled", "state rows corrected from the hub's own records after an unclean run"),
    Metric("ingested", "records the hub acknowledged"),
    Metric("ingest_failed", "records the hub rejected for good"),
    Metric("dead_lettered", "records written to failed_records"),
    Metric("duration_ms", "wall time of the batch", unit="milliseconds"),
)

METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in METRICS)
"""Every metric name, in the order reports show them."""

FAILURE_METRICS: tuple[str, ...] = (
    "fetch_failed",
    "normalize_failed",
    "validation_failed",
    "map_failed",
    "ingest_failed",
)
"""The per-stage failure counts; they add up to ``dead_lettered``."""
