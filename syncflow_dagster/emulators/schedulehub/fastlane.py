"""The fast lane: a batch of new, valid upserts, decoded and checked in C.

Most batches a sync sends are fresh upserts that break no rule. For those, a
typed msgspec decoder (one per entity, built from its schema) parses the body
and checks every wire rule and every field type at once, without building a
dict per record; the few checks it cannot express (hex identifiers, datetime
offsets, parents present and allowed, ids unique and all new) run column-wise.
Anything the lane does not accept — a malformed body, a bad value, a delete, a
repeated or known id, a missing parent, an entity that may be its own parent —
leaves the batch untouched for the exact path (:mod:`batch`, :mod:`apply`),
which gives the precise answer. The lane's outcome equals that path's outcome
for every batch it accepts: all ``created``.
"""

import datetime as dt
from collections.abc import Sequence
from itertools import chain, repeat
from operator import attrgetter
from typing import Any

import msgspec

from syncflow_dagster.emulators.schedulehub.apply import Outcome
from syncflow_dagster.emulators.schedulehub.batch import HASH_WIDTH, ID_WIDTH, MAX_RECORDS, all_hex
from syncflow_dagster.emulators.schedulehub.datacheck import shared_names
from syncflow_dagster.emulators.schedulehub.rules import CREATED
from syncflow_dagster.emulators.schedulehub.schemas import EntitySchema, FieldSpec
from syncflow_dagster.emulators.schedulehub.state import Hub, Row, link, split_values
from syncflow_dagster.emulators.schedulehub.values import column_ok

_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,  # msgspec: no bool, no float
    "number": int | float,  # keeps 5 and 5.0 apart, as they arrived
    "boolean": bool,
    "date": dt.date,  # exactly YYYY-MM-DD, a real date; stored back in that form
    "datetime": str,  # checked below, stored as sent
}


class _Parent(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    entity: str
    external_id: str


def _field(spec: FieldSpec) -> tuple[str, Any]:
    kind = _TYPES[spec.type]
    # No default: a record without the field leaves the lane (the exact path
    # handles missing fields); null only where the schema allows it.
    return (spec.name, kind if spec.required else kind | None)


class FastLane:
    """The lane for one entity."""

    def __init__(self, schema: EntitySchema) -> None:
        self.schema = schema
        self.names = shared_names(tuple(f.name for f in schema.fields))
        self._datetimes = [i for i, f in enumerate(schema.fields) if f.type == "datetime"]
        data = msgspec.defstruct(
            f"{schema.name}_data",
            [_field(f) for f in schema.fields],
            forbid_unknown_fields=True,
            kw_only=True,
            gc=False,
        )
        record = msgspec.defstruct(
            f"{schema.name}_record",
            [
                ("external_id", str),
                ("op", str),
                ("data", data),
                ("data_hash", str),
                ("parents", list[_Parent], msgspec.field(default_factory=list)),
            ],
            forbid_unknown_fields=True,
            kw_only=True,
            gc=False,
        )
        batch = msgspec.defstruct(
            f"{schema.name}_batch",
            [("batch_id", str), ("records", list[record])],  # type: ignore[valid-type]
        )
        self._decode = msgspec.json.Decoder(batch).decode
        self.enabled = schema.name not in schema.parents

    def apply(self, hub: Hub, body: bytes, now: str) -> tuple[str, Sequence[str], Outcome] | None:
        """Apply the batch if it is in the lane's scope; None leaves it for the exact path."""
        if not self.enabled:
            return None
        try:
            batch: Any = self._decode(body)
        except (msgspec.MsgspecError, TypeError):  # TypeError: an integer beyond 64 bits
            return None
        records = batch.records
        n = len(records)
        if n == 0 or n > MAX_RECORDS:
            return None
        ops = set(map(attrgetter("op"), records))
        if ops != {"upsert"}:
            return None
        ids: list[str] = list(map(attrgetter("external_id"), records))
        hashes: list[str] = list(map(attrgetter("data_hash"), records))
        if not all_hex(ids, ID_WIDTH) or not all_hex(hashes, HASH_WIDTH):
            return None
        rows = hub[self.schema.name].rows
        if len(set(ids)) != n or not rows.keys().isdisjoint(ids):
            return None
        datas = list(map(attrgetter("data"), records))
        values = list(map(msgspec.structs.astuple, datas))
        for i in self._datetimes:
            spec = self.schema.fields[i]
            if not column_ok("datetime", [v[i] for v in values], nullable=not spec.required):
                return None
        parents = list(map(attrgetter("parents"), records))
        refs = _parent_refs(hub, self.schema, parents)
        if refs is None:
            return None
        ref_entities, ref_ids = refs
        try:
            blobs = split_values(values)
        except TypeError:  # an integer orjson cannot write (beyond 64 bits)
            return None
        new_rows = _rows(hashes, now, self.names, blobs, parents, ref_entities, ref_ids)
        rows.update(zip(ids, new_rows, strict=True))
        hub[self.schema.name].membership_changed()
        link(hub, ref_entities, ref_ids)
        outcome = Outcome([CREATED] * n, written_ids=ids, written_rows=new_rows)
        return batch.batch_id, ids, outcome


def _parent_refs(
    hub: Hub, schema: EntitySchema, parents: list[list[_Parent]]
) -> tuple[list[str], list[str]] | None:
    """The parent references flat (entities, ids); None unless all are allowed and present.

    Entity names are replaced by the schema's own strings, so that a million
    rows share one string per parent entity instead of holding a copy each.
    """
    refs = list(chain.from_iterable(parents))
    if not refs:
        return [], []
    allowed = {p: p for p in schema.parents}
    entities: list[str] = list(map(attrgetter("entity"), refs))
    ids: list[str] = list(map(attrgetter("external_id"), refs))
    distinct = set(entities)
    if not distinct <= allowed.keys() or not all_hex(ids, ID_WIDTH):
        return None
    if len(distinct) == 1:
        entity = allowed[distinct.pop()]
        entities = [entity] * len(ids)
        if not hub[entity].rows.keys() >= set(ids):
            return None
        return entities, ids
    entities = list(map(allowed.__getitem__, entities))
    for entity in distinct:
        stored = hub[entity].rows.keys()
        if not stored >= {p for e, p in zip(entities, ids, strict=True) if e == entity}:
            return None
    return entities, ids


def _rows(
    hashes: list[str],
    now: str,
    names: tuple[str, ...],
    blobs: list[bytes],
    parents: list[list[_Parent]],
    ref_entities: list[str],
    ref_ids: list[str],
) -> list[Row]:
    """The stored rows (see :mod:`state`), by columns when every record names as many parents."""
    counts = set(map(len, parents))
    if counts == {0}:
        return list(zip(hashes, repeat(now), repeat(names), blobs))
    if counts == {1}:
        return list(zip(hashes, repeat(now), repeat(names), blobs, ref_entities, ref_ids))
    out: list[Row] = []
    at = 0
    for h, blob, refs in zip(hashes, blobs, parents, strict=True):
        end = at + len(refs)
        pairs = zip(ref_entities[at:end], ref_ids[at:end], strict=True)
        out.append((h, now, names, blob, *chain.from_iterable(pairs)))
        at = end
    return out
