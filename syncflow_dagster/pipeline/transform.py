"""Steps 2–4: normalize, validate, map — each splits records into good ones and dead letters."""

import time
from collections.abc import Collection, Mapping

import polars as pl

from syncflow_dagster.config.loader import ConfigError, EntityCatalog
from syncflow_dagster.config.models import EntityConfig
from syncflow_dagster.edges.schedulehub import HubEntity
from syncflow_dagster.pipeline.keys import key_hashes
from syncflow_dagster.pipeline.slice import SyncSlice
from syncflow_dagster.stages.dead_letters import dead_letters
from syncflow_dagster.stages.failures import ROW
from syncflow_dagster.stages.mapping import MappingError, map_records
from syncflow_dagster.stages.normalize import ColumnSpec, normalize
from syncflow_dagster.stages.validate import validate


def column_specs(cfg: EntityConfig, types: Mapping[str, str]) -> list[ColumnSpec]:
    """Normalizer specs of the columns the entity reads, in reading order."""
    return [ColumnSpec(name, types[name]) for name in cfg.read_columns]


def entity_timezone(cfg: EntityConfig, default: str) -> str:
    """The ERP time zone of the entity's naive dates."""
    return cfg.source.timezone or default


def with_key_hashes(
    letters: pl.DataFrame, s: SyncSlice, cfg: EntityConfig, default_tz: str
) -> pl.DataFrame:
    """Dead letters with their BK_HASH wherever the record's key can be read.

    Done while the raw form is still in memory, for the few failed rows only.
    """
    unknown = letters.filter(pl.col("bk_hash").is_null())
    if unknown.height == 0:
        return letters
    rows = s.raw.join(unknown.select(ROW), on=ROW, how="semi")
    keys = key_hashes(rows, cfg, s.source_columns, entity_timezone(cfg, default_tz))
    return (
        letters.join(keys.rename({"bk_hash": "_bk"}), on=ROW, how="left")
        .with_columns(pl.coalesce("bk_hash", "_bk").alias("bk_hash"))
        .drop("_bk")
    )


def normalize_step(s: SyncSlice, catalog: EntityCatalog, default_tz: str) -> SyncSlice:
    """Parse every value into its type; unreadable values dead-letter their record."""
    began = time.monotonic()
    cfg = catalog[s.entity]
    specs = column_specs(cfg, s.source_columns)
    result = normalize(s.frame, specs, entity_timezone(cfg, default_tz))
    letters = dead_letters(
        "normalize", result.failures, s.raw, cfg.source.key, cfg.source.rowversion
    )
    return s.advance(
        "normalize",
        began,
        frame=result.frame,
        dead=s.with_dead(with_key_hashes(letters, s, cfg, default_tz)),
        metrics={"normalized": result.frame.height, "normalize_failed": result.failures.height},
    )


def validate_step(s: SyncSlice, catalog: EntityCatalog, default_tz: str) -> SyncSlice:
    """Apply the entity's rules (and the key checks); breakers are dead-lettered."""
    began = time.monotonic()
    cfg = catalog[s.entity]
    good, failures = validate(s.frame, cfg)
    letters = dead_letters(
        "validate", failures, s.raw, cfg.source.key, cfg.source.rowversion, normalized=s.frame
    )
    return s.advance(
        "validate",
        began,
        frame=good,
        dead=s.with_dead(with_key_hashes(letters, s, cfg, default_tz)),
        metrics={"validated": good.height, "validation_failed": failures.height},
    )


def check_against_hub(
    catalog: EntityCatalog, entity: str, hub: Mapping[str, HubEntity]
) -> set[str]:
    """Check the entity's mapping against the hub's schema; return the required fields.

    Raises:
        ConfigError: naming file, entity and field when the mapping cannot match
            (unknown hub entity, a field the hub lacks, a type mismatch, a
            required hub field the mapping never fills, a parent the hub does not allow).
    """
    cfg = catalog[entity]
    target = cfg.target.entity
    if target not in hub:
        raise ConfigError(
            f"{catalog.where(entity, 'target.entity')}: ScheduleHub has no entity '{target}' "
            f"(it has: {', '.join(sorted(hub))})"
        )
    schema = hub[target]
    for f in cfg.target.fields:
        where = catalog.where(entity, f"target.fields[{f.name}]")
        if f.name not in schema.fields:
            raise ConfigError(f"{where}: ScheduleHub entity '{target}' has no field '{f.name}'")
        if schema.fields[f.name].type != f.type:
            raise ConfigError(
                f"{where}: type {f.type} but ScheduleHub expects {schema.fields[f.name].type}"
            )
    mapped = {f.name for f in cfg.target.fields}
    unfilled = sorted(n for n, hf in schema.fields.items() if hf.required and n not in mapped)
    if unfilled:
        raise ConfigError(
            f"{catalog.where(entity, 'target.fields')}: ScheduleHub requires "
            f"{', '.join(unfilled)} but the mapping does not fill them"
        )
    for parent in cfg.parents:
        parent_target = catalog[parent.entity].target.entity
        if parent_target not in schema.parents:
            raise ConfigError(
                f"{catalog.where(entity, f'parents[{parent.entity}]')}: ScheduleHub does not allow "
                f"'{parent_target}' as a parent of '{target}' "
                f"(allowed: {', '.join(schema.parents) or 'none'})"
            )
    return {n for n, hf in schema.fields.items() if hf.required}


def map_step(
    s: SyncSlice, catalog: EntityCatalog, default_tz: str, required: Collection[str]
) -> SyncSlice:
    """Make the target fields; records that cannot fill them are dead-lettered.

    Raises:
        ConfigError: when a field's configuration cannot apply to the source types.
    """
    began = time.monotonic()
    cfg = catalog[s.entity]
    try:
        result = map_records(s.frame, cfg, entity_timezone(cfg, default_tz), required)
    except MappingError as exc:
        raise ConfigError(f"{catalog.where(s.entity, 'target.fields')}: {exc}") from None
    letters = dead_letters(
        "map",
        result.failures,
        s.raw,
        cfg.source.key,
        cfg.source.rowversion,
        normalized=s.frame,
        mapped=result.rejected,
        fields=[f.name for f in cfg.target.fields],
    )
    if s.raw_spill is not None:
        # Past this step only the hub can fail a record: the raw form waits on disk.
        s.raw_spill.wait()
        raw = s.raw.clear()
    else:
        raw = s.raw
    return s.advance(
        "map",
        began,
        raw=raw,
        frame=result.frame,
        dead=s.with_dead(with_key_hashes(letters, s, cfg, default_tz)),
        metrics={"mapped": result.frame.height, "map_failed": result.failures.height},
    )
