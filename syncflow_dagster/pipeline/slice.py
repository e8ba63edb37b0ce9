"""The records of one sync run as they pass from step to step."""

import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import polars as pl

from syncflow_dagster.metrics import METRIC_NAMES
from syncflow_dagster.pipeline.lifecycle import OpenBatch
from syncflow_dagster.pipeline.raw_spill import RawSpill
from syncflow_dagster.stages.dead_letters import DEAD_LETTER_SCHEMA, empty_dead_letters
from syncflow_dagster.stages.failures import ROW
from syncflow_dagster.stages.resolve import ResolvePlan

Mode = Literal["incremental", "full", "retry"]


@dataclass(frozen=True)
class SyncSlice:
    """One run's slice of an entity: its frames, failures and counts so far.

    Steps never change a slice; they return a new one (``advance``), so an
    earlier step's output stays what it was.
    """

    entity: str
    batch_id: int
    mode: Mode
    source_columns: dict[str, str]
    batch: OpenBatch | None = None
    since_rowversion: int | None = None
    truncated: bool = False
    # a stretch of a full pass; whether the pass reaches the end of the data in this run
    full_pass: bool = False
    pass_ends: bool = False
    next_cursor: str | None = None
    # whether the run compared the ERP's keys with the state (deletes found)
    deletes_checked: bool = False
    top_rowversion: int | None = None
    settled: int = 0
    # From fetch to delta: on full runs every state key's rowversion (no data
    # hashes); otherwise the state of the fetched keys.
    state: pl.DataFrame | None = None
    stale_keys: pl.Series | None = None
    expired: pl.Series | None = None
    raw: pl.DataFrame = field(default_factory=pl.DataFrame)
    raw_spill: RawSpill | None = None
    frame: pl.DataFrame = field(default_factory=pl.DataFrame)
    dead: pl.DataFrame = field(default_factory=empty_dead_letters)
    present_keys: pl.DataFrame | None = None
    """Every key APISmith listed, when the run compared keys (one ``bk_key`` column)."""
    fetched_keys: pl.Series | None = None
    deletes: pl.DataFrame | None = None
    plan: ResolvePlan | None = None
    pending: pl.DataFrame | None = None
    released: pl.Series | None = None
    metrics: dict[str, int] = field(default_factory=lambda: dict.fromkeys(METRIC_NAMES, 0))
    delete_candidates: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def advance(self, stage: str, began: float, **changes: Any) -> "SyncSlice":
        """A new slice with ``changes``; metrics are merged, the stage's time recorded."""
        metrics = {**self.metrics, **changes.pop("metrics", {})}
        seconds = {**self.stage_seconds, stage: time.monotonic() - began}
        return replace(self, metrics=metrics, stage_seconds=seconds, **changes)

    def raw_rows(self, ids: pl.Series) -> pl.DataFrame:
        """The fetched (raw) form of the records with these ``_row`` ids."""
        if self.raw_spill is not None and self.raw.height == 0:
            return self.raw_spill.rows(ids)
        return self.raw.join(ids.cast(pl.UInt32).to_frame(ROW).unique(), on=ROW, how="semi")

    def with_dead(self, letters: pl.DataFrame) -> pl.DataFrame:
        """This slice's dead letters with ``letters`` added."""
        if letters.height == 0:
            return self.dead
        return pl.concat([self.dead, letters], how="diagonal_relaxed").select(
            [pl.col(c).cast(t) for c, t in DEAD_LETTER_SCHEMA.items()]
        )
