"""The API's request and response bodies and query parameters, as pydantic models.

The OpenAPI document is built from these: what a handler returns is validated
by its model, and what a client sends is parsed by one.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from syncflow_dagster.metrics import METRIC_NAMES

ErrorKindName = Literal["transient", "permanent", "configuration"]
RunMode = Literal["configured", "incremental", "full"]
CompareMode = Literal["configured", "rowversion", "data_hash"]
BatchStatus = Literal["running", "succeeded", "failed", "paused", "skipped"]
FailedStatus = Literal["open", "retrying", "resolved", "abandoned", "discarded"]
PendingStatus = Literal["waiting", "released", "expired", "dead_lettered", "dropped"]

BIGINT_MAX = 2**63 - 1
"""The largest integer the state database holds (a 64-bit signed integer)."""
Id = Annotated[int, Field(ge=0, le=BIGINT_MAX)]
"""A row id or filter value sent to the state database: larger ones are refused with 422."""


class Body(BaseModel):
    """A request body: unknown fields are refused, and no value is coerced into another type."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Query(BaseModel):
    """Query parameters: unknown ones are ignored."""

    model_config = ConfigDict(extra="ignore")


class Out(BaseModel):
    """A response body."""


# --- errors --------------------------------------------------------------------------------


class FieldError(Out):
    """One input that failed validation (its value is never echoed)."""

    loc: str = Field(description="where: body.entity, query.limit, path.run, …")
    message: str


class Problem(Out):
    """An RFC 9457 problem document (``application/problem+json``)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = None


# --- service ---------------------------------------------------------------------------------


class ServiceInfo(Out):
    """What answers here, and where to go next."""

    service: str
    version: str
    environment: str
    links: dict[str, str]


class HealthCheck(Out):
    """One dependency: up or down, how long the check took, and why it is down."""

    status: Literal["up", "down"]
    latency_ms: float
    target: str | None = Field(default=None, description="what was asked (credentials masked)")
    error: str | None = None


class Health(Out):
    """Liveness, and readiness when dependencies were checked."""

    status: Literal["healthy", "unhealthy"]
    service: str
    version: str
    environment: str
    timestamp: datetime
    checks: dict[str, HealthCheck] = Field(default_factory=dict)


class Metadata(Out):
    """The service, its configuration (never a secret) and its entities."""

    service: str
    version: str
    api_version: str
    environment: str
    started_at: datetime
    uptime_seconds: float
    dagster_webserver: str
    entities: list[str]
    jobs: list[str]
    auth: dict[str, Any]
    settings: dict[str, Any]
    metric_names: list[str] = Field(default=list(METRIC_NAMES))


# --- syncs -----------------------------------------------------------------------------------


class SyncStartRequest(Body):
    """What to sync, and how."""

    entity: str = Field(
        min_length=1, max_length=100, description="a configured entity, or 'all' (sync_all_job)"
    )
    mode: RunMode = "configured"
    max_rows: int | None = Field(
        default=None,
        ge=1,
        le=BIGINT_MAX,
        description="row limit of this run (default: the entity's)",
    )
    compare: CompareMode = "configured"
    partition: str | None = Field(
        default=None,
        max_length=20,
        description="the night's partition (YYYY-MM-DD); default: the window under way",
    )


class RetryFailedRequest(Body):
    """Which dead letters to retry: ids and/or filters (at least one)."""

    ids: list[Id] = Field(default_factory=list, max_length=10_000)
    entity: str | None = Field(default=None, max_length=100)
    stage: str | None = Field(default=None, max_length=32)
    code: str | None = Field(default=None, max_length=100)
    kind: ErrorKindName | None = None
    batch_id: Id | None = None
    reason: str = Field(default="", max_length=2000)


class RunLaunch(Out):
    """A run launched through Dagster."""

    run_id: str
    job: str
    entity: str | None
    partition: str | None
    status: str = Field(description="Dagster's run status (QUEUED while the run queue holds it)")
    launched_by: str
    links: dict[str, str]


class Batch(Out):
    """One row of sync_batches: a run's work on one entity, with its metrics."""

    id: int
    entity: str
    run_id: str
    mode: str
    status: BatchStatus
    partition_key: str | None
    started_at: datetime
    finished_at: datetime | None
    mapping_version: int | None
    watermark_from: int | None
    watermark_to: int | None
    error: str | None
    error_kind: str | None
    metrics: dict[str, int]


class SyncRun(Out):
    """A Dagster run and the batches it wrote."""

    run_id: str
    job: str | None
    entity: str | None
    status: str = Field(description="Dagster's run status; UNKNOWN when Dagster cannot tell")
    launched_by: str | None
    trigger: str | None
    partition: str | None
    created_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    batches: list[Batch]
    links: dict[str, str]
    dagster_error: str | None = None


class EntityActivity(Out):
    """What is going on for one entity."""

    entity: str
    active_runs: list[SyncRun]
    running_batches: list[Batch]
    last_batch: Batch | None


class SyncOverview(Out):
    """Every entity's active runs and latest batch."""

    entities: list[EntityActivity]
    dagster_error: str | None = None


class SyncStopQuery(Query):
    """How long to wait for the run to end before answering."""

    wait_seconds: float = Field(default=20.0, ge=0, le=120)


class SyncStop(Out):
    """What a stop did."""

    runs: list[SyncRun]
    terminated: list[str]
    batches_closed: list[int]
    detail: str


class HistoryQuery(Query):
    """Which batches, newest first; page with ``before_id``."""

    entity: str | None = Field(default=None, max_length=100)
    status: BatchStatus | None = None
    mode: Literal["full", "incremental", "retry"] | None = None
    limit: int = Field(default=50, ge=1, le=500)
    before_id: int | None = Field(default=None, ge=1, le=BIGINT_MAX)


class HistoryItem(Batch):
    """A batch and its run's status in Dagster."""

    run_status: str | None


class History(Out):
    """A page of batches, newest first."""

    items: list[HistoryItem]
    next_before_id: int | None
    dagster_error: str | None = None


class RunPath(BaseModel):
    """A run id, or an entity name (its latest runs)."""

    run: str = Field(min_length=1, max_length=100)


# --- entities -------------------------------------------------------------------------------


class EntityPath(BaseModel):
    """An entity's name."""

    name: str = Field(min_length=1, max_length=100)


class EntitySummary(Out):
    """A configured entity."""

    name: str
    description: str
    source_entity: str
    target_entity: str
    parents: list[str]
    mode: str
    schedule: dict[str, Any] | None
    background: bool
    file: str
    job: str
    mapping_version: int | None = Field(description="the latest version field_mappings holds")


class EntityList(RootModel[list[EntitySummary]]):
    """Every configured entity, parents first."""


class EntityState(Out):
    """What the state store holds for an entity."""

    records: int
    waiting_children: int
    open_dead_letters: int
    running_batches: int
    batches: int
    watermark: int | None


class EntityDetail(EntitySummary):
    """An entity: its configuration (as JSON and as the YAML file) and its state."""

    config: dict[str, Any]
    yaml: str
    state: EntityState


class Reload(Out):
    """Whether the Dagster code location was reloaded after the change."""

    reloaded: bool
    detail: str | None = None


class EntityChange(Out):
    """What an add, update or delete did."""

    entity: str
    action: Literal["created", "updated", "deleted"]
    file: str
    mapping_version: int | None
    code_location: Reload
    purged: dict[str, int] | None = None


class DeleteQuery(Query):
    """``purge=true`` also deletes the entity's state (records, history, letters, children)."""

    purge: bool = False


# --- monitoring -----------------------------------------------------------------------------


class EntityStats(Out):
    """One entity's figures."""

    entity: str
    batches: dict[str, int] = Field(description="batches by status")
    records_in_state: int
    waiting_children: int
    open_dead_letters: int
    last_success_at: datetime | None
    last_batch: Batch | None
    totals: dict[str, int] = Field(description="each batch metric summed over finished batches")


class Stats(Out):
    """Figures per entity."""

    generated_at: datetime
    entities: list[EntityStats]


class Action(Out):
    """One entry of a row's history."""

    at: str | None
    action: str | None
    reason: str | None


class FailedQuery(Query):
    """Which dead letters, oldest first; page with ``after_id``."""

    entity: str | None = Field(default=None, max_length=100)
    stage: str | None = Field(default=None, max_length=32)
    code: str | None = Field(default=None, max_length=100)
    kind: ErrorKindName | None = None
    status: FailedStatus | Literal["any"] = "open"
    batch_id: Id | None = None
    since: str | None = Field(
        default=None,
        max_length=40,
        description="an age (30m, 12h, 7d, 2w) or an ISO date or timestamp (UTC without a zone)",
    )
    limit: int = Field(default=50, ge=1, le=1000)
    after_id: int = Field(default=0, ge=0, le=BIGINT_MAX)


class FailedRecord(Out):
    """A dead letter: where and why it failed, its forms, its history."""

    id: int
    batch_id: int
    entity: str
    bk_hash: str | None
    source_key: str | None
    rowversion: int | None
    stage: str
    code: str
    detail: str | None
    raw: str | None
    normalized: str | None
    mapped: str | None
    attempts: int
    next_retry_at: datetime | None
    status: str
    error_kind: str | None
    resolved_at: datetime | None
    resolution: str | None
    actions: list[Action]
    created_at: datetime
    updated_at: datetime


class FailedList(Out):
    """A page of dead letters."""

    items: list[FailedRecord]
    next_after_id: int | None


class FailedPath(BaseModel):
    """A dead letter's id."""

    id: int = Field(ge=1, le=2**62)


class PendingQuery(Query):
    """Which waiting children, oldest first; page with ``after_id``."""

    entity: str | None = Field(default=None, max_length=100)
    status: PendingStatus | Literal["any"] = "waiting"
    batch_id: Id | None = None
    since: str | None = Field(default=None, max_length=40, description="as for failed records")
    limit: int = Field(default=50, ge=1, le=1000)
    after_id: int = Field(default=0, ge=0, le=BIGINT_MAX)


class PendingChild(Out):
    """A child waiting for its parent (or what became of it)."""

    id: int
    entity: str
    bk_hash: str
    batch_id: int
    rowversion: int | None
    payload: str
    waiting_for: str
    attempts: int
    next_retry_at: datetime | None
    status: str
    created_at: datetime
    updated_at: datetime
    released_at: datetime | None
    actions: list[Action]


class PendingList(Out):
    """A page of waiting children."""

    items: list[PendingChild]
    next_after_id: int | None


# --- schedules (background syncs) ------------------------------------------------------------


class SchedulePath(BaseModel):
    """The entity whose background sync it is."""

    entity: str = Field(min_length=1, max_length=100)


class ScheduleFields(Body):
    """What a background sync's row may say (each optional; ``null`` leaves the default)."""

    window_start: str | None = Field(default=None, max_length=8, description="HH:MM in the zone")
    window_end: str | None = Field(default=None, max_length=8, description="HH:MM in the zone")
    timezone: str | None = Field(default=None, max_length=64, description="IANA zone")
    rows_per_night: int | None = Field(
        default=None, ge=1, le=BIGINT_MAX, description="the nightly budget"
    )
    target_nights: int | None = Field(
        default=None, ge=1, le=10_000, description="spread the rows over this many nights instead"
    )
    mode: Literal["incremental", "full"] | None = None


class ScheduleCreate(ScheduleFields):
    """A new background sync for an entity."""

    entity: str = Field(min_length=1, max_length=100)


class PauseRequest(Body):
    """Why the background sync is held."""

    reason: str = Field(default="", max_length=2000)


class Schedule(Out):
    """A background sync: its row, its budget and the nights it still needs."""

    entity: str
    window_start: str
    window_end: str
    timezone: str
    rows_per_night: int | None
    target_nights: int | None
    mode: str
    status: str
    on_hold: bool
    rows_done: int
    rows_total: int | None
    nights_used: int
    night: str | None
    night_rows: int
    chunk_seconds: float | None
    trigger_requested_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime | None
    last_error: str | None
    last_run_id: str | None
    budget: int
    nights_left: int | None


class ScheduleList(RootModel[list[Schedule]]):
    """Every background sync, by entity."""


class ScheduleStats(Out):
    """A background sync's progress figures."""

    entity: str
    status: str
    on_hold: bool
    rows_done: int
    rows_total: int | None
    done_share: float | None
    nights_used: int
    nights_left: int | None
    budget: int
    night: str | None
    night_rows: int
    chunk_seconds: float | None
    last_error: str | None
    last_run_id: str | None


class ScheduleStatsList(RootModel[list[ScheduleStats]]):
    """Every background sync's figures."""


class ScheduleDeleted(Out):
    """A background sync removed (its reading position stays)."""

    entity: str
    deleted: bool


class InstigatorState(Out):
    """A Dagster schedule or sensor of SyncFlow and whether it runs."""

    name: str
    kind: Literal["schedule", "sensor"]
    status: Literal["RUNNING", "STOPPED"]


class SchedulesStatus(Out):
    """Dagster's schedules and sensors, and the background syncs' states."""

    instigators: list[InstigatorState]
    background: list[ScheduleStats]
    dagster_error: str | None = None


class SwitchRequest(Body):
    """Which schedules and sensors to switch (none named: every one of SyncFlow's)."""

    names: list[str] = Field(default_factory=list, max_length=200)


class SwitchResult(Out):
    """The schedules and sensors after the switch."""

    switched: list[str]
    instigators: list[InstigatorState]
