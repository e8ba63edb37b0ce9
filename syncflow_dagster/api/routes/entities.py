"""Entities: the YAML configuration — list, add, get, update, delete.

Add and update check the file exactly as the loader does (with every other
entity), write it into ENTITIES_DIR, record the mapping version in
``field_mappings`` and reload Dagster's code location, so the entity's job
exists (or follows the change) at once. Delete refuses while the entity has
state, unless ``purge=true``, and always while a run holds it or another
entity names it as a parent.
"""

from typing import Any

from syncflow_dagster.api import entity_files, queries
from syncflow_dagster.api.context import ApiContext
from syncflow_dagster.api.endpoint import Call, Endpoint, Reply
from syncflow_dagster.api.models import (
    DeleteQuery,
    EntityChange,
    EntityDetail,
    EntityList,
    EntityPath,
    EntityState,
    EntitySummary,
    Reload,
)
from syncflow_dagster.api.problems import conflict, not_found
from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.config.models import EntityConfig
from syncflow_dagster.orchestration.factories.sync_job import sync_job_name
from syncflow_dagster.pipeline.revision import mapping_identity


def _summary(ctx: ApiContext, catalog: EntityCatalog, cfg: EntityConfig) -> dict[str, Any]:
    schedule = cfg.sync.schedule.model_dump(exclude_defaults=True)
    return {
        "name": cfg.name,
        "description": cfg.description,
        "source_entity": cfg.source.entity,
        "target_entity": cfg.target.entity,
        "parents": [p.entity for p in cfg.parents],
        "mode": cfg.sync.mode,
        "schedule": schedule or None,
        "background": bool(cfg.sync.schedule.nightly),
        "file": str(catalog.files.get(cfg.name, "")),
        "job": sync_job_name(cfg.name),
        "mapping_version": ctx.store.latest_mapping_version(cfg.name),
    }


def list_entities(ctx: ApiContext, call: Call) -> EntityList:
    """Every configured entity, parents first."""
    catalog = ctx.catalog()
    return EntityList([EntitySummary(**_summary(ctx, catalog, cfg)) for cfg in catalog])


def get_entity(ctx: ApiContext, call: Call) -> EntityDetail:
    """One entity: its configuration (JSON and the YAML file as written) and its state."""
    name = call.path_as(EntityPath).name
    catalog = ctx.catalog()
    if name not in catalog.entities:
        raise not_found(f"no entity '{name}' is configured")
    cfg = catalog[name]
    return EntityDetail(
        **_summary(ctx, catalog, cfg),
        config=cfg.model_dump(mode="json", by_alias=True, exclude_defaults=True),
        yaml=catalog.files[name].read_text(encoding="utf-8"),
        state=EntityState(**queries.entity_state(ctx.store, name)),
    )


def _reload(ctx: ApiContext) -> Reload:
    outcome = ctx.dagster.reload_location()
    return Reload(reloaded=outcome.ok, detail=outcome.detail)


def _save(ctx: ApiContext, call: Call, replacing: str | None) -> EntityChange:
    assert call.text is not None
    with ctx.entity_lock:
        catalog = ctx.catalog()
        candidate = entity_files.check(ctx.settings.entities_dir, catalog, call.text, replacing)
        entity_files.write(candidate)
        cfg = candidate.config
        version = ctx.store.register_mapping(cfg.name, mapping_identity(cfg))
        reload = _reload(ctx)
    return EntityChange(
        entity=cfg.name,
        action="updated" if replacing else "created",
        file=str(candidate.path),
        mapping_version=version,
        code_location=reload,
    )


def add_entity(ctx: ApiContext, call: Call) -> Reply:
    """Add an entity: its YAML (``application/yaml``, or the same as JSON).

    Checked exactly as the loader checks it, with every other entity; written
    as ``<name>.yaml`` into ENTITIES_DIR; its mapping version recorded; the
    code location reloaded, so ``sync_<name>_job`` exists at once.
    """
    change = _save(ctx, call, None)
    return Reply(change, 201, {"Location": f"/api/v1/entities/{change.entity}"})


def update_entity(ctx: ApiContext, call: Call) -> EntityChange:
    """Replace an entity's configuration (same name); checked, written, versioned, reloaded.

    A change of the mapping gets a new mapping version: the next run maps every
    record again.
    """
    return _save(ctx, call, call.path_as(EntityPath).name)


def delete_entity(ctx: ApiContext, call: Call) -> EntityChange:
    """Delete an entity's configuration file.

    Refused (409) while a run holds the entity, while another entity names it
    as a parent, and — unless ``purge=true`` — while the state store holds
    anything of it (records, waiting children, open dead letters). ``purge``
    deletes that state, its batches and its mapping versions too.
    """
    name = call.path_as(EntityPath).name
    purge = call.query_as(DeleteQuery).purge
    with ctx.entity_lock:
        catalog = ctx.catalog()
        path = entity_files.check_removal(catalog, name)
        state = queries.entity_state(ctx.store, name)
        if state["running_batches"] or ctx.store.get_lease(name) is not None:
            raise conflict(
                f"a run of '{name}' is under way: stop it first (POST /api/v1/sync/stop/{name})"
            )
        held = {
            k: state[k] for k in ("records", "waiting_children", "open_dead_letters") if state[k]
        }
        if held and not purge:
            figures = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in held.items())
            raise conflict(
                f"entity '{name}' still has state ({figures}); delete with purge=true to "
                "delete that state too"
            )
        purged = queries.purge_entity(ctx.store, name) if purge else None
        path.unlink()
        reload = _reload(ctx)
    return EntityChange(
        entity=name,
        action="deleted",
        file=str(path),
        mapping_version=None,
        code_location=reload,
        purged=purged,
    )


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v1/entities",
        list_entities,
        "Every configured entity",
        "entities",
        "read",
        EntityList,
        errors=(500,),
    ),
    Endpoint(
        "POST",
        "/api/v1/entities",
        add_entity,
        "Add an entity",
        "entities",
        "operator",
        EntityChange,
        status=201,
        body_model=EntityConfig,
        body_kind="entity",
        errors=(409, 500),
    ),
    Endpoint(
        "GET",
        "/api/v1/entities/{name}",
        get_entity,
        "One entity, its configuration and state",
        "entities",
        "read",
        EntityDetail,
        path_model=EntityPath,
        errors=(404, 500),
    ),
    Endpoint(
        "PUT",
        "/api/v1/entities/{name}",
        update_entity,
        "Change an entity",
        "entities",
        "operator",
        EntityChange,
        path_model=EntityPath,
        body_model=EntityConfig,
        body_kind="entity",
        errors=(404, 500),
    ),
    Endpoint(
        "DELETE",
        "/api/v1/entities/{name}",
        delete_entity,
        "Delete an entity (purge=true: and its state)",
        "entities",
        "operator",
        EntityChange,
        path_model=EntityPath,
        query_model=DeleteQuery,
        errors=(404, 409, 500),
    ),
]
