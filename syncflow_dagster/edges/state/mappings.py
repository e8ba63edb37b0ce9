"""field_mappings: every distinct mapping config an entity ran with, numbered 1, 2, 3…."""

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from syncflow_dagster.edges.state.base import StoreBase, utcnow
from syncflow_dagster.edges.state.tables import field_mappings

_ATTEMPTS = 5


def canonical_json(config: Mapping[str, Any]) -> str:
    """The config as canonical JSON: sorted keys, no whitespace, UTF-8 kept."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``config``."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()


class MappingOps(StoreBase):
    """Version mapping configs."""

    def register_mapping(self, entity: str, config: Mapping[str, Any]) -> int:
        """The version of ``config`` for ``entity``: known config → its version, new → next.

        Safe under concurrency: a racing registration of the same or another config
        is retried against the unique constraints.
        """
        text = canonical_json(config)
        digest = hashlib.sha256(text.encode()).hexdigest()
        for _ in range(_ATTEMPTS):
            try:
                with self._write() as conn:
                    found = conn.execute(
                        select(field_mappings.c.version).where(
                            field_mappings.c.entity == entity,
                            field_mappings.c.config_hash == digest,
                        )
                    ).scalar_one_or_none()
                    if found is not None:
                        return int(found)
                    latest = conn.execute(
                        select(func.max(field_mappings.c.version)).where(
                            field_mappings.c.entity == entity
                        )
                    ).scalar_one()
                    version = int(latest or 0) + 1
                    conn.execute(
                        field_mappings.insert().values(
                            entity=entity,
                            version=version,
                            config_hash=digest,
                            config=text,
                            created_at=utcnow(),
                        )
                    )
                    return version
            except IntegrityError:
                continue
        raise RuntimeError(f"could not register a mapping version for {entity!r}")

    def get_mapping(self, entity: str, version: int) -> dict[str, Any] | None:
        """The config registered as ``version`` of ``entity`` (None if unknown)."""
        with self._read() as conn:
            text = conn.execute(
                select(field_mappings.c.config).where(
                    field_mappings.c.entity == entity, field_mappings.c.version == version
                )
            ).scalar_one_or_none()
        return None if text is None else dict(json.loads(text))

    def latest_mapping_version(self, entity: str) -> int | None:
        """The highest registered version of ``entity`` (None if none)."""
        with self._read() as conn:
            value = conn.execute(
                select(func.max(field_mappings.c.version)).where(field_mappings.c.entity == entity)
            ).scalar_one()
        return None if value is None else int(value)
