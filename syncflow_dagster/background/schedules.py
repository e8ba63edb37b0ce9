"""The background-sync rows: create, change, pause, resume, reset, trigger — and read them.

One row per entity (``background_sync_schedule``) is the source of truth: the
sensor reads it on every tick, so a window or budget changed here takes effect
the next night without a redeploy. Entities configured ``schedule: {nightly:
true}`` get a row from their YAML and the settings the first time anything
reads the rows (idempotently: a row someone changed is never overwritten).
The CLI (``syncflow schedules``) and the operations API call these functions.
"""

import math
from dataclasses import dataclass, replace
from datetime import datetime, time
from typing import Any

from syncflow_dagster.background.window import Window, parse_clock
from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.edges.state import BackgroundRow, BackgroundRowNotFoundError, StateStore
from syncflow_dagster.edges.state.base import utcnow
from syncflow_dagster.errors import ConfigurationError
from syncflow_dagster.settings import Settings

__all__ = [
    "BackgroundDefaults",
    "BackgroundRowNotFoundError",
    "BackgroundSchedule",
    "ScheduleError",
    "create_schedule",
    "delete_schedule",
    "ensure_schedules",
    "get_schedule",
    "list_schedules",
    "pause_schedule",
    "reset_schedule",
    "resume_schedule",
    "schedule_stats",
    "trigger_schedule",
    "update_schedule",
]

CHANGEABLE = (
    "window_start",
    "window_end",
    "timezone",
    "rows_per_night",
    "target_nights",
    "mode",
)


@dataclass(frozen=True)
class BackgroundDefaults:
    """What a background sync gets unless its row says otherwise (from the settings)."""

    window_start: time
    window_end: time
    timezone: str
    rows_per_night: int
    chunk_rows: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "BackgroundDefaults":
        """The BACKGROUND_* settings and ERP_TIMEZONE."""
        return cls(
            settings.background_sync_window_start,
            settings.background_sync_window_end,
            settings.erp_timezone,
            settings.background_rows_per_night,
            settings.background_chunk_rows,
        )


class ScheduleError(ConfigurationError):
    """A background sync cannot be created or changed that way; the message says why."""


@dataclass(frozen=True)
class BackgroundSchedule:
    """A background sync as people and programs see it: the row and what follows from it."""

    row: BackgroundRow
    default_rows_per_night: int

    @property
    def entity(self) -> str:
        """The synced entity."""
        return self.row.entity

    @property
    def window(self) -> Window:
        """The nightly window."""
        r = self.row
        return Window(parse_clock(r.window_start), parse_clock(r.window_end), r.timezone)

    @property
    def budget(self) -> int:
        """Rows per night: set, or the total spread over the target nights, or the default."""
        r = self.row
        if r.rows_per_night:
            return r.rows_per_night
        if r.target_nights and r.rows_total:
            return max(1, math.ceil(r.rows_total / r.target_nights))
        return self.default_rows_per_night

    @property
    def nights_left(self) -> int | None:
        """Nights still needed at the budget (None: the total is not known yet)."""
        r = self.row
        if r.rows_total is None:
            return None
        if r.status == "done":
            return 0
        return math.ceil(max(0, r.rows_total - r.rows_done) / self.budget)

    def as_dict(self) -> dict[str, Any]:
        """Every field, plus the budget and the nights left (for the CLI and the API)."""
        out = {k: v for k, v in vars(self.row).items()}
        out.update(budget=self.budget, nights_left=self.nights_left)
        return out


def _schedule(row: BackgroundRow, defaults: BackgroundDefaults) -> BackgroundSchedule:
    return BackgroundSchedule(row, defaults.rows_per_night)


def _checked(values: dict[str, Any], catalog: EntityCatalog, entity: str) -> dict[str, Any]:
    """Values of a row, checked; times as ``HH:MM``.

    Raises:
        ScheduleError: naming the field and what is wrong.
    """
    if entity not in catalog.entities:
        known = ", ".join(catalog.entities)
        raise ScheduleError(f"entity '{entity}' is not configured (known: {known})")
    out = dict(values)
    for name in ("window_start", "window_end"):
        if name in out and out[name] is not None:
            value = out[name]
            clock = value if not isinstance(value, str) else None
            try:
                clock = clock or parse_clock(value)
            except ValueError as exc:
                raise ScheduleError(f"{name}: {exc}") from None
            out[name] = clock.strftime("%H:%M")
    for name in ("rows_per_night", "target_nights"):
        if out.get(name) is not None and int(out[name]) < 1:
            raise ScheduleError(f"{name} must be at least 1, got {out[name]}")
    if out.get("mode") not in (None, "incremental", "full"):
        raise ScheduleError(f"mode must be incremental or full, got {out['mode']!r}")
    if catalog[entity].source.rowversion is None and out.get("mode") == "incremental":
        raise ScheduleError(f"'{entity}' has no rowversion: only mode full can page through it")
    return out


def _window_of(row: BackgroundRow) -> None:
    try:
        Window(parse_clock(row.window_start), parse_clock(row.window_end), row.timezone)
    except (ValueError, KeyError) as exc:
        raise ScheduleError(
            f"window {row.window_start}–{row.window_end} {row.timezone}: {exc}"
        ) from None


def default_row(entity: str, catalog: EntityCatalog, defaults: BackgroundDefaults) -> BackgroundRow:
    """The row an entity gets from its YAML and the defaults."""
    return BackgroundRow(
        entity=entity,
        window_start=defaults.window_start.strftime("%H:%M"),
        window_end=defaults.window_end.strftime("%H:%M"),
        timezone=defaults.timezone,
        mode=catalog[entity].sync.mode,
    )


def ensure_schedules(
    store: StateStore, catalog: EntityCatalog, defaults: BackgroundDefaults
) -> None:
    """Give every ``nightly`` entity its row if it has none (never changes an existing one)."""
    for cfg in catalog:
        if cfg.sync.schedule.nightly:
            store.insert_background(default_row(cfg.name, catalog, defaults), if_absent=True)


def list_schedules(
    store: StateStore, catalog: EntityCatalog, defaults: BackgroundDefaults
) -> list[BackgroundSchedule]:
    """Every background sync, by entity."""
    ensure_schedules(store, catalog, defaults)
    return [_schedule(r, defaults) for r in store.list_background()]


def get_schedule(
    store: StateStore, catalog: EntityCatalog, defaults: BackgroundDefaults, entity: str
) -> BackgroundSchedule:
    """One entity's background sync.

    Raises:
        BackgroundRowNotFoundError: it has none.
    """
    ensure_schedules(store, catalog, defaults)
    row = store.get_background(entity)
    if row is None:
        raise BackgroundRowNotFoundError(f"'{entity}' has no background sync")
    return _schedule(row, defaults)


def create_schedule(
    store: StateStore,
    catalog: EntityCatalog,
    defaults: BackgroundDefaults,
    entity: str,
    **values: Any,
) -> BackgroundSchedule:
    """A new background sync for ``entity`` (window, zone, budget, mode; defaults from defaults).

    Raises:
        ScheduleError: a bad value, or the entity has one already.
    """
    checked = _checked(values, catalog, entity)
    row = replace(default_row(entity, catalog, defaults), **checked)
    _window_of(row)
    if not store.insert_background(row, if_absent=True):
        raise ScheduleError(f"'{entity}' has a background sync already: change it instead")
    return get_schedule(store, catalog, defaults, entity)


def update_schedule(
    store: StateStore,
    catalog: EntityCatalog,
    defaults: BackgroundDefaults,
    entity: str,
    **values: Any,
) -> BackgroundSchedule:
    """Change the window, zone, budget or mode; it takes effect at the next run.

    Raises:
        ScheduleError: a field that cannot be changed, or a bad value.
        BackgroundRowNotFoundError: the entity has no background sync.
    """
    fixed = sorted(set(values) - set(CHANGEABLE))
    if fixed:
        raise ScheduleError(f"cannot change {', '.join(fixed)} (changeable: {CHANGEABLE})")
    current = get_schedule(store, catalog, defaults, entity).row
    checked = _checked(values, catalog, entity)
    _window_of(replace(current, **checked))
    return _schedule(store.update_background(entity, **checked), defaults)


def delete_schedule(
    store: StateStore, catalog: EntityCatalog, defaults: BackgroundDefaults, entity: str
) -> bool:
    """Remove the entity's background sync (its reading position stays); whether it had one.

    Raises:
        ScheduleError: the entity is ``nightly`` in its YAML, so its row would be
            made again at the next read: hold it instead (or change the YAML).
    """
    if entity in catalog.entities and catalog[entity].sync.schedule.nightly:
        raise ScheduleError(
            f"'{entity}' is nightly in {catalog.where(entity, 'sync.schedule.nightly')}: its "
            "background sync comes from the YAML and cannot be deleted; pause it "
            "(`syncflow schedules pause`), or remove schedule.nightly from the YAML"
        )
    return store.delete_background(entity)


def pause_schedule(
    store: StateStore,
    catalog: EntityCatalog,
    defaults: BackgroundDefaults,
    entity: str,
    reason: str = "",
) -> BackgroundSchedule:
    """Hold it: nothing is launched until it is resumed (a run under way finishes its chunk)."""
    get_schedule(store, catalog, defaults, entity)
    note = f"on hold: {reason}" if reason else "on hold"
    return _schedule(store.update_background(entity, on_hold=True, last_error=note), defaults)


def resume_schedule(
    store: StateStore, catalog: EntityCatalog, defaults: BackgroundDefaults, entity: str
) -> BackgroundSchedule:
    """Let it launch again in its next window."""
    get_schedule(store, catalog, defaults, entity)
    return _schedule(store.update_background(entity, on_hold=False, last_error=None), defaults)


def reset_schedule(
    store: StateStore, catalog: EntityCatalog, defaults: BackgroundDefaults, entity: str
) -> BackgroundSchedule:
    """Start over: progress back to nothing, and a full pass from the first record.

    The sync state (what the hub has) is kept: rows the hub has in this
    version are settled again at once.
    """
    get_schedule(store, catalog, defaults, entity)
    store.reset_pass(entity)
    row = store.update_background(
        entity,
        status="pending",
        rows_done=0,
        rows_total=None,
        nights_used=0,
        night=None,
        night_rows=0,
        started_at=None,
        finished_at=None,
        last_error=None,
    )
    return _schedule(row, defaults)


def trigger_schedule(
    store: StateStore,
    catalog: EntityCatalog,
    defaults: BackgroundDefaults,
    entity: str,
    now: datetime | None = None,
) -> BackgroundSchedule:
    """Ask for a run at the sensor's next tick instead of the next hour (inside the window only).

    Raises:
        ScheduleError: the window is closed now, or the sync is on hold.
    """
    schedule = get_schedule(store, catalog, defaults, entity)
    now = now or utcnow()
    if schedule.row.on_hold:
        raise ScheduleError(f"'{entity}' is on hold: resume it first")
    if not schedule.window.is_open(now):
        opens = schedule.window.next_opening(now)
        raise ScheduleError(
            f"the window of '{entity}' is closed; it opens at {opens:%Y-%m-%d %H:%M %Z}"
        )
    row = store.update_background(entity, trigger_requested_at=now)
    return _schedule(row, defaults)


def schedule_stats(
    store: StateStore, catalog: EntityCatalog, defaults: BackgroundDefaults, entity: str
) -> dict[str, Any]:
    """Progress figures: rows done of total, nights used and left, budget, last chunk time."""
    s = get_schedule(store, catalog, defaults, entity)
    r = s.row
    done_share = r.rows_done / r.rows_total if r.rows_total else None
    return {
        "entity": r.entity,
        "status": r.status,
        "on_hold": r.on_hold,
        "rows_done": r.rows_done,
        "rows_total": r.rows_total,
        "done_share": done_share,
        "nights_used": r.nights_used,
        "nights_left": s.nights_left,
        "budget": s.budget,
        "night": r.night,
        "night_rows": r.night_rows,
        "chunk_seconds": r.chunk_seconds,
        "last_error": r.last_error,
        "last_run_id": r.last_run_id,
    }
