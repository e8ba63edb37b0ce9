"""Entity files: check a new or changed entity exactly as the loader does, then write it.

A candidate file is checked by :func:`~syncflow_dagster.config.loader.load_catalog`
together with every other entity file, as Dagster will load them: the typed
models, the type checks and the checks across entities (parents, key types,
one hub entity per entity). Messages name the file the entity will have.
Files are written whole or not at all (a temporary file renamed over).
"""

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from syncflow_dagster.api.problems import ApiProblem, conflict, not_found
from syncflow_dagster.config.loader import ConfigError, EntityCatalog, load_catalog
from syncflow_dagster.config.models import IDENTIFIER, EntityConfig


@dataclass(frozen=True)
class Candidate:
    """A checked entity and the file it goes to."""

    config: EntityConfig
    path: Path
    text: str


def _name_in(text: str) -> str | None:
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    name = raw.get("name") if isinstance(raw, dict) else None
    return name if isinstance(name, str) and IDENTIFIER.match(name) else None


def check(directory: Path, catalog: EntityCatalog, text: str, replacing: str | None) -> Candidate:
    """Check ``text`` as a new entity file (or as the new file of ``replacing``).

    Raises:
        ApiProblem: 404 when ``replacing`` is not configured; 409 when a new
            entity's name is taken; 422 with the loader's message when the
            configuration cannot be used.
    """
    name = _name_in(text)
    if replacing is not None:
        if replacing not in catalog.entities:
            raise not_found(f"no entity '{replacing}' is configured")
        target = catalog.files[replacing]
        if name is not None and name != replacing:
            raise _renamed(target, name, replacing)
    else:
        if name is not None and name in catalog.entities:
            raise conflict(
                f"entity '{name}' is configured already ({catalog.files[name]}); "
                f"change it with PUT /api/v1/entities/{name}"
            )
        target = directory / f"{name or 'new_entity'}.yaml"
        if name is not None and target.exists():
            raise conflict(f"{target} exists but defines no entity '{name}'")
    others = [path for entity, path in catalog.files.items() if entity != replacing]
    with tempfile.TemporaryDirectory(prefix="syncflow-entity-") as tmp:
        staged = Path(tmp) / target.name
        staged.write_text(text, encoding="utf-8")
        try:
            checked = load_catalog([*others, staged])
        except ConfigError as exc:
            message = str(exc).replace(str(staged), str(target))
            raise ApiProblem(422, message, title="Invalid Entity Configuration") from None
    config = next(cfg for path, cfg in _by_file(checked) if path == staged)
    if replacing is not None and config.name != replacing:
        raise _renamed(target, config.name, replacing)
    return Candidate(config, target, text)


def _renamed(target: Path, name: str, replacing: str) -> ApiProblem:
    return ApiProblem(
        422,
        f"{target}: the body names entity '{name}', not '{replacing}'; to rename an entity, "
        "add the new one and delete the old one",
        title="Invalid Entity Configuration",
    )


def _by_file(catalog: EntityCatalog) -> list[tuple[Path, EntityConfig]]:
    return [(catalog.files[name], cfg) for name, cfg in catalog.entities.items()]


def write(candidate: Candidate) -> None:
    """Write the entity's file atomically (a reader sees the old file or the new one)."""
    target = candidate.path
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, staged = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(candidate.text if candidate.text.endswith("\n") else candidate.text + "\n")
        os.replace(staged, target)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise


def check_removal(catalog: EntityCatalog, name: str) -> Path:
    """The file of ``name``, once sure the others still load without it.

    Raises:
        ApiProblem: 404 when it is not configured; 409 when another entity names it
            as a parent, or it is the last entity.
    """
    if name not in catalog.entities:
        raise not_found(f"no entity '{name}' is configured")
    children = catalog.children_of(name)
    if children:
        raise conflict(
            f"entity '{name}' is the parent of {', '.join(sorted(children))}: change or delete "
            "those first"
        )
    others = [path for entity, path in catalog.files.items() if entity != name]
    if not others:
        raise conflict(f"'{name}' is the only configured entity; SyncFlow needs at least one")
    try:
        load_catalog(others)
    except ConfigError as exc:
        raise conflict(f"without '{name}' the configuration does not load: {exc}") from None
    return catalog.files[name]
