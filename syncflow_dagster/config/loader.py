"""Load and check the entity configuration: every mistake names file, entity and field.

Three layers of checks: the typed models (each file's shape), the type checks
of :mod:`syncflow_dagster.config.checks` (values against field types, rules and
fields against the declared column types), and the checks across entities here
(parents, their key types, one hub entity per entity). Where an entity declares
no ``source.columns``, the type checks wait for APISmith's description:
:func:`check_against_source` runs them at the start of a run.
"""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, time
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from syncflow_dagster.config.checks import (
    Problem,
    field_value_problems,
    key_type_problem,
    source_type_problems,
)
from syncflow_dagster.config.models import EntityConfig
from syncflow_dagster.errors import ConfigurationError

_UNION_BRANCHES = frozenset({"str", "int", "float", "bool"})


class ConfigError(ConfigurationError):
    """The entity configuration cannot be used; the message says where and why."""


def _where(path: Path, entity: str | None, location: str | None) -> str:
    parts = [str(path)]
    if entity:
        parts.append(f"entity '{entity}'")
    if location:
        parts.append(f"field '{location}'")
    return ": ".join(parts)


def _location(raw: Any, loc: tuple[int | str, ...]) -> str:
    """A dotted location; list indexes of named items become their names."""
    out: list[str] = []
    node = raw
    for part in loc:
        if isinstance(part, int) and isinstance(node, list) and part < len(node):
            item = node[part]
            label = None
            if isinstance(item, Mapping):
                label = item.get("name") or item.get("column") or item.get("entity")
            out.append(f"[{label}]" if label else f"[{part}]")
            node = item
        else:
            out.append(("." if out else "") + str(part))
            node = node.get(part) if isinstance(node, Mapping) else None
    return "".join(out)


def parse_entity_file(path: Path) -> EntityConfig:
    """Read and check one entity file.

    Raises:
        ConfigError: naming the file, the entity and the field at fault.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping describing one entity")
    entity = raw.get("name") if isinstance(raw.get("name"), str) else None
    try:
        cfg = EntityConfig.model_validate(raw)
    except ValidationError as exc:
        problems: dict[str, str] = {}
        for err in exc.errors(include_url=False):
            loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
            msg = err["msg"].removeprefix("Value error, ")
            if loc and loc[-1] in _UNION_BRANCHES:  # one line for a scalar of no known type
                loc = loc[:-1]
                msg = "should be text, a number or true/false"
                if isinstance(err.get("input"), date | time):
                    msg += f" (YAML read {err['input']} as a date or time: quote it)"
            problems.setdefault(f"{_where(path, entity, _location(raw, loc) or None)}: {msg}", "")
        raise ConfigError("\n".join(problems)) from None
    cfg._file = path
    found = field_value_problems(cfg)
    if cfg.source.columns is not None:
        found += source_type_problems(cfg, cfg.source.columns)
    _raise(path, cfg.name, found)
    return cfg


def _raise(path: Path, entity: str, problems: Iterable[Problem]) -> None:
    """One ConfigError listing every problem, each naming file, entity and field; or nothing."""
    lines = [f"{_where(path, entity, location)}: {message}" for location, message in problems]
    if lines:
        raise ConfigError("\n".join(lines))


def _file_of(cfg: EntityConfig, catalog: "EntityCatalog | None" = None) -> Path:
    if cfg._file is not None:
        return cfg._file
    if catalog is not None and cfg.name in catalog.files:
        return catalog.files[cfg.name]
    return Path("<config>")


def _parent_key_problems(
    child: EntityConfig,
    child_types: Mapping[str, str] | None,
    parent: EntityConfig,
    parent_types: Mapping[str, str] | None,
) -> list[Problem]:
    """The child's columns that carry ``parent``'s key, against that key's types."""
    if child_types is None or parent_types is None:
        return []
    problems: list[Problem] = []
    for link in child.parents:
        if link.entity != parent.name:
            continue
        for mine, theirs in zip(link.columns, parent.source.key, strict=False):
            if mine not in child_types or theirs not in parent_types:
                continue
            problem = key_type_problem(
                mine, child_types[mine], parent.name, theirs, parent_types[theirs]
            )
            if problem:
                problems.append((f"parents[{parent.name}].columns", problem))
    return problems


def check_against_source(
    cfg: EntityConfig,
    columns: Mapping[str, str],
    *,
    catalog: "EntityCatalog | None" = None,
) -> None:
    """Check an entity against its source column types as APISmith describes them.

    For an entity without ``source.columns``, whose types are known only at run
    time: call it at the start of a run, before anything is fetched. It makes
    the checks the loader makes for declared columns: every column read exists,
    rules and fields fit the column types, the rowversion is a whole number.
    Given the ``catalog``, it also checks the parent-key columns against the
    declared key types of this entity's parents, and this entity's key against
    the declared parent-key columns of its children.

    Args:
        cfg: the entity, as loaded.
        columns: column name -> Oracle type text (APISmith's ``/api/v1/entities``).
        catalog: the catalog ``cfg`` belongs to (optional).

    Raises:
        ConfigError: listing every problem, each naming the file, the entity and the field.
    """
    path = _file_of(cfg, catalog)
    try:
        cfg.check_columns(columns)
    except ValueError as exc:
        known = ", ".join(sorted(columns)) or "none"
        _raise(path, cfg.name, [("source.columns", f"{exc} at APISmith (it has: {known})")])
    noted = " (types as APISmith describes them)"
    _raise(path, cfg.name, [(at, msg + noted) for at, msg in source_type_problems(cfg, columns)])
    if catalog is None:
        return
    found = []
    for link in cfg.parents:
        if link.entity in catalog.entities:
            parent = catalog[link.entity]
            for problem in _parent_key_problems(cfg, columns, parent, parent.source.columns):
                found.append(f"{_where(path, cfg.name, problem[0])}: {problem[1]}")
    for child_name in catalog.children_of(cfg.name):
        child = catalog[child_name]
        for location, message in _parent_key_problems(child, child.source.columns, cfg, columns):
            found.append(f"{_where(_file_of(child, catalog), child.name, location)}: {message}")
    if found:
        raise ConfigError("\n".join(found))


@dataclass(frozen=True)
class EntityCatalog:
    """Every configured entity, checked together; iterates in parent-first order."""

    entities: Mapping[str, EntityConfig]
    files: Mapping[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_parents()
        self._check_parent_key_types()
        self._check_targets()

    def __iter__(self) -> Iterator[EntityConfig]:
        return (self.entities[name] for name in self.parent_first())

    def __getitem__(self, name: str) -> EntityConfig:
        return self.entities[name]

    def __len__(self) -> int:
        return len(self.entities)

    def where(self, entity: str, location: str | None = None) -> str:
        """File, entity and field as an error message prefix."""
        return _where(self.files.get(entity, Path("<config>")), entity, location)

    def parent_first(self) -> list[str]:
        """Entity names with every parent before its children (stable by name)."""
        sorter: TopologicalSorter[str] = TopologicalSorter()
        for name in sorted(self.entities):
            sorter.add(name, *sorted({p.entity for p in self.entities[name].parents}))
        return list(sorter.static_order())

    def children_of(self, name: str) -> list[str]:
        """Entities that name ``name`` as a parent."""
        return [e.name for e in self if any(p.entity == name for p in e.parents)]

    def _check_targets(self) -> None:
        """Two SyncFlow entities must not feed one ScheduleHub entity."""
        feeding: dict[str, list[str]] = {}
        for name in sorted(self.entities):
            feeding.setdefault(self.entities[name].target.entity, []).append(name)
        for target, names in sorted(feeding.items()):
            if len(names) < 2:
                continue
            # Blame the one whose target is not named like itself: most likely the slip.
            blamed = next((n for n in reversed(names) if n != target), names[-1])
            others = ", ".join(
                f"'{n}' ({self.files.get(n, '<config>')})" for n in names if n != blamed
            )
            raise ConfigError(
                f"{self.where(blamed, 'target.entity')}: ScheduleHub entity '{target}' is "
                f"already fed by entity {others}; each entity must own its hub entity (two "
                "would mix their records there, and neither's sync state and deletes would "
                "describe what the hub holds): give each its own target.entity, or merge "
                "the two files"
            )

    def _check_parent_key_types(self) -> None:
        for name, cfg in self.entities.items():
            for link in cfg.parents:
                parent = self.entities[link.entity]
                found = _parent_key_problems(cfg, cfg.source.columns, parent, parent.source.columns)
                _raise(self.files.get(name, Path("<config>")), name, found)

    def _check_parents(self) -> None:
        for name, cfg in self.entities.items():
            for i, parent in enumerate(cfg.parents):
                loc = f"parents[{parent.entity}]"
                if parent.entity not in self.entities:
                    raise ConfigError(
                        f"{self.where(name, loc)}: parent entity '{parent.entity}' "
                        "is not configured"
                    )
                parent_key = self.entities[parent.entity].source.key
                if len(parent.columns) != len(parent_key):
                    raise ConfigError(
                        f"{self.where(name, loc + '.columns')}: {len(parent.columns)} column(s) "
                        f"given but the key of '{parent.entity}' has {len(parent_key)} "
                        f"({', '.join(parent_key)})"
                    )
                if any(q.entity == parent.entity for q in cfg.parents[:i]):
                    raise ConfigError(f"{self.where(name, loc)}: parent named twice")
        try:
            self.parent_first()
        except CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            raise ConfigError(f"entity configuration: parents form a cycle: {cycle}") from None


def load_catalog(paths: Path | Iterable[Path]) -> EntityCatalog:
    """Load every ``*.yaml`` entity file of a directory (or the given files).

    Raises:
        ConfigError: on the first file with a mistake, or on a mistake across entities.
    """
    if isinstance(paths, Path):
        if not paths.is_dir():
            raise ConfigError(f"{paths}: entity configuration directory does not exist")
        files = sorted([*paths.glob("*.yaml"), *paths.glob("*.yml")])
        if not files:
            raise ConfigError(f"{paths}: no entity files (*.yaml) found")
    else:
        files = list(paths)
    entities: dict[str, EntityConfig] = {}
    where: dict[str, Path] = {}
    for path in files:
        cfg = parse_entity_file(path)
        if cfg.name in entities:
            raise ConfigError(
                f"{_where(path, cfg.name, 'name')}: entity also defined in {where[cfg.name]}"
            )
        entities[cfg.name] = cfg
        where[cfg.name] = path
    return EntityCatalog(entities, where)
