"""Prometheus metrics at ``/api/v1/metrics``, read from the state database at each scrape.

* ``syncflow_batch_<name>_total{entity}`` — every batch metric of
  :data:`syncflow_dagster.metrics.METRIC_NAMES`, summed over the entity's
  finished batches (counters: they only grow while batches are kept);
* ``syncflow_batches_total{entity,status}`` — finished batches;
* ``syncflow_run_duration_seconds{entity}`` — histogram of batch durations;
* ``syncflow_waiting_children{entity}``, ``syncflow_dead_letters_open{entity,code,kind}``;
* ``syncflow_last_successful_sync_timestamp_seconds{entity}``;
* ``syncflow_background_rows_done{entity}`` / ``syncflow_background_rows_total{entity}``;
* ``syncflow_http_retries_total{upstream}`` / ``syncflow_http_failures_total{upstream}`` —
  from the call trail of :mod:`syncflow_dagster.logs`: this process's, or every
  process's on the host when ``PROMETHEUS_MULTIPROC_DIR`` is shared with the
  Dagster processes;
* ``syncflow_state_up`` — 1 when the state database answered this scrape.
"""

import logging
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from syncflow_dagster.api import queries
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.logs import UPSTREAM_COUNTERS
from syncflow_dagster.metrics import METRICS

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StateCollector(Collector):
    """The state database's figures, collected when Prometheus scrapes."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        """Every family; ``syncflow_state_up`` 0 (and nothing else) when the database fails."""
        up = GaugeMetricFamily("syncflow_state_up", "1 when the state database answered")
        try:
            families = list(self._families())
        except Exception as exc:
            log.warning("metrics: the state database did not answer: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> Iterator[Metric]:
        store = self.store
        totals = queries.totals(store)
        finished = [row for row in totals if row["status"] != "running"]
        for metric in METRICS:
            family = CounterMetricFamily(
                f"syncflow_batch_{metric.name}",
                f"{metric.description} ({metric.unit}), summed over finished batches",
                labels=["entity"],
            )
            by_entity: dict[str, int] = {}
            for row in finished:
                by_entity[row["entity"]] = by_entity.get(row["entity"], 0) + int(row[metric.name])
            for entity, value in sorted(by_entity.items()):
                family.add_metric([entity], value)
            yield family
        batches = CounterMetricFamily(
            "syncflow_batches", "finished batches", labels=["entity", "status"]
        )
        for row in sorted(finished, key=lambda r: (r["entity"], r["status"])):
            batches.add_metric([row["entity"], row["status"]], int(row["batches"]))
        yield batches
        yield self._durations()
        waiting = GaugeMetricFamily(
            "syncflow_waiting_children", "children waiting for a parent", labels=["entity"]
        )
        for entity, n in sorted(queries.waiting_children(store).items()):
            waiting.add_metric([entity], n)
        yield waiting
        letters = GaugeMetricFamily(
            "syncflow_dead_letters_open",
            "open (or retrying) dead letters",
            labels=["entity", "code", "kind"],
        )
        for row in queries.open_dead_letters(store):
            letters.add_metric([row["entity"], row["code"], row["error_kind"] or ""], row["n"])
        yield letters
        last = GaugeMetricFamily(
            "syncflow_last_successful_sync_timestamp_seconds",
            "when the entity's latest succeeded batch finished (Unix time)",
            labels=["entity"],
        )
        for entity, at in sorted(queries.last_success(store).items()):
            last.add_metric([entity], at.timestamp())
        yield last
        yield from self._background()

    def _durations(self) -> Metric:
        family = HistogramMetricFamily(
            "syncflow_run_duration_seconds", "wall time of finished batches", labels=["entity"]
        )
        for row in sorted(queries.duration_histogram(self.store), key=lambda r: r["entity"]):
            buckets = [
                (f"{bound:g}", float(row[f"le_{i}"] or 0))
                for i, bound in enumerate(queries.DURATION_BUCKETS)
            ]
            buckets.append(("+Inf", float(row["count"])))
            family.add_metric([row["entity"]], buckets, float(row["sum_ms"]) / 1000)
        return family

    def _background(self) -> Iterator[Metric]:
        done = GaugeMetricFamily(
            "syncflow_background_rows_done",
            "rows a background sync has loaded so far",
            labels=["entity"],
        )
        total = GaugeMetricFamily(
            "syncflow_background_rows_total",
            "rows the background sync has to load (APISmith's count)",
            labels=["entity"],
        )
        for row in self.store.list_background():
            done.add_metric([row.entity], row.rows_done)
            if row.rows_total is not None:
                total.add_metric([row.entity], row.rows_total)
        yield done
        yield total


class _LocalUpstream(Collector):
    """This process's HTTP retries and failures (no shared directory configured)."""

    def collect(self) -> Iterator[Metric]:
        registry = UPSTREAM_COUNTERS.ensure().registry
        assert registry is not None
        yield from registry.collect()


def build_registry(store: StateStore, multiproc_dir: Path | None) -> CollectorRegistry:
    """The registry ``/api/v1/metrics`` renders."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(store))
    if multiproc_dir is not None and multiproc_dir.is_dir():
        MultiProcessCollector(registry, path=str(multiproc_dir))
    else:
        registry.register(_LocalUpstream())
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition format."""
    return generate_latest(registry)
