"""Load and check the entity configuration: every mistake names file, entity and field."""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from syncflow_dagster.config.models import EntityConfig
from syncflow_dagster.errors import ConfigurationError


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
        return EntityConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{_where(path, entity, _location(raw, loc) or None)}: {msg}")
        raise ConfigError("\n".join(problems)) from None


@dataclass(frozen=True)
class EntityCatalog:
    """Every configured entity, checked together; iterates in parent-first order."""

    entities: Mapping[str, EntityConfig]
    files: Mapping[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_parents()

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
