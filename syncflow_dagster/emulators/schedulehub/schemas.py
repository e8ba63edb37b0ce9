"""The entity schemas the hub accepts, read from YAML (``config/schedulehub/entities.yaml``)."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FIELD_TYPES = ("string", "integer", "number", "boolean", "date", "datetime")


class SchemaConfigError(ValueError):
    """The schema file cannot be used; the message names the file, entity and field."""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of an entity: its name, type (one of FIELD_TYPES) and whether it is required."""

    name: str
    type: str
    required: bool


@dataclass(frozen=True)
class EntitySchema:
    """An entity: its fields in order and the entities its records may name as parents."""

    name: str
    fields: tuple[FieldSpec, ...]
    parents: tuple[str, ...]
    field_map: dict[str, FieldSpec] = field(init=False, repr=False, compare=False)
    required: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "field_map", {f.name: f for f in self.fields})
        object.__setattr__(self, "required", tuple(f.name for f in self.fields if f.required))

    def to_json(self) -> dict[str, Any]:
        """The entity as GET /api/v1/entities serves it."""
        return {
            "name": self.name,
            "fields": [
                {"name": f.name, "type": f.type, "required": f.required} for f in self.fields
            ],
            "parents": list(self.parents),
        }


def _fail(path: Path, where: str, what: str) -> SchemaConfigError:
    return SchemaConfigError(f"{path}: {where}: {what}")


def _field(path: Path, entity: str, raw: Any) -> FieldSpec:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise _fail(path, f"entity {entity!r}", f"field {raw!r} needs a non-empty 'name'")
    name = raw["name"]
    where = f"entity {entity!r}, field {name!r}"
    if raw.get("type") not in FIELD_TYPES:
        raise _fail(path, where, f"type {raw.get('type')!r} is not one of {', '.join(FIELD_TYPES)}")
    if not isinstance(raw.get("required", False), bool):
        raise _fail(path, where, "'required' must be true or false")
    unknown = set(raw) - {"name", "type", "required"}
    if unknown:
        raise _fail(path, where, f"unknown keys {sorted(unknown)}")
    return FieldSpec(name, raw["type"], raw.get("required", False))


def load_schemas(path: Path | str) -> dict[str, EntitySchema]:
    """Read and check the schema file; entities by name, in file order.

    Raises:
        SchemaConfigError: naming the file, entity and field of the first problem.
    """
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SchemaConfigError(f"{path}: cannot read: {exc}") from None
    raw_entities = doc.get("entities") if isinstance(doc, dict) else None
    if not isinstance(raw_entities, list):
        raise _fail(path, "top level", "needs an 'entities' list")
    schemas: dict[str, EntitySchema] = {}
    for raw in raw_entities:
        name = raw.get("name") if isinstance(raw, dict) else None
        if not isinstance(name, str) or not name:
            raise _fail(path, "entities", f"entry {raw!r} needs a non-empty 'name'")
        if name in schemas:
            raise _fail(path, f"entity {name!r}", "defined twice")
        fields = tuple(_field(path, name, f) for f in raw.get("fields") or [])
        seen: set[str] = set()
        for f in fields:
            if f.name in seen:
                raise _fail(path, f"entity {name!r}, field {f.name!r}", "defined twice")
            seen.add(f.name)
        parents = raw.get("parents") or []
        if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
            raise _fail(path, f"entity {name!r}", "'parents' must be a list of entity names")
        schemas[name] = EntitySchema(name, fields, tuple(parents))
    for schema in schemas.values():
        for parent in schema.parents:
            if parent not in schemas:
                raise _fail(path, f"entity {schema.name!r}", f"parent {parent!r} is not an entity")
    return schemas
