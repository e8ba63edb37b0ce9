"""Schedules: the background syncs of big tables, and Dagster's schedules and sensors.

A background sync is one row per entity; these endpoints call exactly the
functions ``syncflow schedules`` calls (:mod:`syncflow_dagster.background.schedules`),
so the API and the CLI cannot disagree. ``background_sync_sensor`` reads the
rows on every tick: a change takes effect the next night without a redeploy.
``start`` and ``stop`` switch Dagster's schedules and sensors of SyncFlow
(all of them, or those named) through the webserver's GraphQL API.
"""

from collections.abc import Callable
from typing import Any

from syncflow_dagster.api.context import ApiContext
from syncflow_dagster.api.dagster import DagsterUnavailableError, Instigator
from syncflow_dagster.api.endpoint import Call, Endpoint, Reply
from syncflow_dagster.api.models import (
    InstigatorState,
    PauseRequest,
    Schedule,
    ScheduleCreate,
    ScheduleDeleted,
    ScheduleFields,
    ScheduleList,
    SchedulePath,
    SchedulesStatus,
    ScheduleStats,
    ScheduleStatsList,
    SwitchRequest,
    SwitchResult,
)
from syncflow_dagster.api.problems import ApiProblem, conflict, not_found
from syncflow_dagster.background import schedules as bg
from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.edges.state import BackgroundRowNotFoundError

Defaults = bg.BackgroundDefaults


def _context(ctx: ApiContext) -> tuple[EntityCatalog, Defaults]:
    return ctx.catalog(), bg.BackgroundDefaults.from_settings(ctx.settings)


def _model(schedule: bg.BackgroundSchedule) -> Schedule:
    return Schedule(**schedule.as_dict())


def _acting(ctx: ApiContext, call: Call, fn: Callable[..., Any], *args: Any) -> Any:
    """Run a background function for the path's entity; its refusals as problems."""
    entity = call.path_as(SchedulePath).entity
    catalog, defaults = _context(ctx)
    if entity not in catalog.entities:
        raise not_found(f"no entity '{entity}' is configured")
    try:
        return fn(ctx.store, catalog, defaults, entity, *args)
    except BackgroundRowNotFoundError:
        raise not_found(f"'{entity}' has no background sync") from None


def _values(fields: ScheduleFields) -> dict[str, Any]:
    """The fields given (as the CLI does: a budget in rows drops the target nights, and back)."""
    given = fields.model_dump(exclude_unset=True, exclude={"entity"})
    if given.get("rows_per_night") is not None and given.get("target_nights") is not None:
        raise ApiProblem(
            422,
            "give rows_per_night or target_nights, not both",
            errors=[{"loc": "body.target_nights", "message": "conflicts with rows_per_night"}],
        )
    if given.get("rows_per_night") is not None:
        given["target_nights"] = None
    elif given.get("target_nights") is not None:
        given["rows_per_night"] = None
    return given


def _invalid(exc: bg.ScheduleError) -> ApiProblem:
    return ApiProblem(422, str(exc), title="Invalid Background Sync")


def list_all(ctx: ApiContext, call: Call) -> ScheduleList:
    """Every background sync, by entity (nightly entities get their row on first read)."""
    catalog, defaults = _context(ctx)
    return ScheduleList([_model(s) for s in bg.list_schedules(ctx.store, catalog, defaults)])


def create(ctx: ApiContext, call: Call) -> Reply:
    """Create a background sync for an entity: window, zone, budget (rows or nights), mode."""
    body = call.body_as(ScheduleCreate)
    catalog, defaults = _context(ctx)
    if body.entity not in catalog.entities:
        raise not_found(f"no entity '{body.entity}' is configured")
    if ctx.store.get_background(body.entity) is not None:
        raise conflict(
            f"'{body.entity}' has a background sync already: change it with "
            f"PUT /api/v1/schedules/{body.entity}"
        )
    try:
        made = bg.create_schedule(ctx.store, catalog, defaults, body.entity, **_values(body))
    except bg.ScheduleError as exc:
        raise _invalid(exc) from None
    return Reply(_model(made), 201, {"Location": f"/api/v1/schedules/{body.entity}"})


def get_one(ctx: ApiContext, call: Call) -> Schedule:
    """One entity's background sync."""
    return _model(_acting(ctx, call, bg.get_schedule))


def update(ctx: ApiContext, call: Call) -> Schedule:
    """Change the window, zone, budget or mode (fields not given stay); from the next run on."""
    values = _values(call.body_as(ScheduleFields))

    def change(*args: Any) -> bg.BackgroundSchedule:
        try:
            return bg.update_schedule(*args, **values)
        except bg.ScheduleError as exc:
            raise _invalid(exc) from None

    return _model(_acting(ctx, call, change))


def delete(ctx: ApiContext, call: Call) -> ScheduleDeleted:
    """Remove an entity's background sync (its reading position stays)."""
    entity = call.path_as(SchedulePath).entity

    def remove(*args: Any) -> bool:
        try:
            return bg.delete_schedule(*args)
        except bg.ScheduleError as exc:
            raise _invalid(exc) from None

    if not _acting(ctx, call, remove):
        raise not_found(f"'{entity}' has no background sync")
    return ScheduleDeleted(entity=entity, deleted=True)


def reset(ctx: ApiContext, call: Call) -> Schedule:
    """Start over: progress back to nothing, a full pass from the first record (state kept)."""
    return _model(_acting(ctx, call, bg.reset_schedule))


def trigger(ctx: ApiContext, call: Call) -> Schedule:
    """Ask for a run at the sensor's next tick instead of the next hour (window open only)."""

    def ask(*args: Any) -> bg.BackgroundSchedule:
        try:
            return bg.trigger_schedule(*args)
        except bg.ScheduleError as exc:
            raise conflict(str(exc)) from None

    return _model(_acting(ctx, call, ask))


def pause(ctx: ApiContext, call: Call) -> Schedule:
    """Hold it: nothing is launched until it is resumed (a run under way finishes its chunk)."""
    reason = call.body_as(PauseRequest).reason or f"held over the operations API by {call.subject}"
    return _model(_acting(ctx, call, bg.pause_schedule, reason))


def resume(ctx: ApiContext, call: Call) -> Schedule:
    """Let it launch again in its next window."""
    return _model(_acting(ctx, call, bg.resume_schedule))


def one_stats(ctx: ApiContext, call: Call) -> ScheduleStats:
    """One background sync's progress: rows done of total, nights used and left, budget."""
    return ScheduleStats(**_acting(ctx, call, bg.schedule_stats))


def all_stats(ctx: ApiContext, call: Call) -> ScheduleStatsList:
    """Every background sync's progress figures."""
    catalog, defaults = _context(ctx)
    rows = bg.list_schedules(ctx.store, catalog, defaults)
    return ScheduleStatsList(
        [ScheduleStats(**bg.schedule_stats(ctx.store, catalog, defaults, s.entity)) for s in rows]
    )


def _state(i: Instigator) -> InstigatorState:
    return InstigatorState(name=i.name, kind=i.kind, status=i.status)


def status(ctx: ApiContext, call: Call) -> SchedulesStatus:
    """Which of SyncFlow's Dagster schedules and sensors run, and each background sync's state."""
    error = None
    try:
        instigators = [_state(i) for i in ctx.dagster.instigators()]
    except DagsterUnavailableError as exc:
        instigators, error = [], str(exc)
    return SchedulesStatus(
        instigators=instigators, background=all_stats(ctx, call).root, dagster_error=error
    )


def _switch(ctx: ApiContext, call: Call, running: bool) -> SwitchResult:
    names = call.body_as(SwitchRequest).names
    known = ctx.dagster.instigators()
    unknown = sorted(set(names) - {i.name for i in known})
    if unknown:
        listed = ", ".join(i.name for i in known)
        raise not_found(f"no schedule or sensor {', '.join(unknown)} (known: {listed})")
    chosen = [i for i in known if not names or i.name in names]
    switched = []
    for instigator in chosen:
        after = ctx.dagster.switch(instigator, running)
        if after.status != instigator.status:
            switched.append(instigator.name)
    return SwitchResult(
        switched=switched, instigators=[_state(i) for i in ctx.dagster.instigators()]
    )


def start(ctx: ApiContext, call: Call) -> SwitchResult:
    """Switch on SyncFlow's Dagster schedules and sensors (all, or the ``names`` given)."""
    return _switch(ctx, call, True)


def stop(ctx: ApiContext, call: Call) -> SwitchResult:
    """Switch off SyncFlow's Dagster schedules and sensors (all, or the ``names`` given).

    Runs already launched go on; nothing new is launched by them until they are started.
    """
    return _switch(ctx, call, False)


TAG = "schedules"
_ENTITY = "/api/v1/schedules/{entity}"

ENDPOINTS = [
    Endpoint(
        "GET", "/api/v1/schedules", list_all, "Every background sync", TAG, "read", ScheduleList
    ),
    Endpoint(
        "POST",
        "/api/v1/schedules",
        create,
        "Create a background sync",
        TAG,
        "operator",
        Schedule,
        status=201,
        body_model=ScheduleCreate,
        errors=(404, 409),
    ),
    Endpoint(
        "GET",
        "/api/v1/schedules/status",
        status,
        "Dagster's schedules and sensors; background states",
        TAG,
        "read",
        SchedulesStatus,
    ),
    Endpoint(
        "GET",
        "/api/v1/schedules/stats",
        all_stats,
        "Every background sync's progress",
        TAG,
        "read",
        ScheduleStatsList,
    ),
    Endpoint(
        "POST",
        "/api/v1/schedules/start",
        start,
        "Switch on schedules and sensors",
        TAG,
        "operator",
        SwitchResult,
        body_model=SwitchRequest,
        body_required=False,
        errors=(404, 409, 502),
    ),
    Endpoint(
        "POST",
        "/api/v1/schedules/stop",
        stop,
        "Switch off schedules and sensors",
        TAG,
        "operator",
        SwitchResult,
        body_model=SwitchRequest,
        body_required=False,
        errors=(404, 409, 502),
    ),
    Endpoint(
        "GET",
        _ENTITY,
        get_one,
        "One background sync",
        TAG,
        "read",
        Schedule,
        path_model=SchedulePath,
        errors=(404,),
    ),
    Endpoint(
        "PUT",
        _ENTITY,
        update,
        "Change a background sync",
        TAG,
        "operator",
        Schedule,
        path_model=SchedulePath,
        body_model=ScheduleFields,
        errors=(404,),
    ),
    Endpoint(
        "DELETE",
        _ENTITY,
        delete,
        "Delete a background sync",
        TAG,
        "operator",
        ScheduleDeleted,
        path_model=SchedulePath,
        errors=(404,),
    ),
    Endpoint(
        "POST",
        f"{_ENTITY}/reset",
        reset,
        "Start a background sync over",
        TAG,
        "operator",
        Schedule,
        path_model=SchedulePath,
        errors=(404,),
    ),
    Endpoint(
        "POST",
        f"{_ENTITY}/trigger",
        trigger,
        "Run it at the sensor's next tick",
        TAG,
        "operator",
        Schedule,
        path_model=SchedulePath,
        errors=(404, 409),
    ),
    Endpoint(
        "POST",
        f"{_ENTITY}/pause",
        pause,
        "Hold a background sync",
        TAG,
        "operator",
        Schedule,
        path_model=SchedulePath,
        body_model=PauseRequest,
        body_required=False,
        errors=(404,),
    ),
    Endpoint(
        "POST",
        f"{_ENTITY}/resume",
        resume,
        "Resume a background sync",
        TAG,
        "operator",
        Schedule,
        path_model=SchedulePath,
        errors=(404,),
    ),
    Endpoint(
        "GET",
        f"{_ENTITY}/stats",
        one_stats,
        "One background sync's progress",
        TAG,
        "read",
        ScheduleStats,
        path_model=SchedulePath,
        errors=(404,),
    ),
]
