"""Applying a batch to the hub's state: one record at a time, or in bulk when that is the same.

The contract applies records one by one in request order. :func:`apply_sequential`
does exactly that and is the reference. :func:`apply_bulk` judges every record
against the state before the batch and then writes all changes at once; it is
used only when no record of the batch can change the answer for another one
(:func:`independent`): no external_id twice, and — for an entity that may be its
own parent — no record naming, or stored as naming, another record of the batch.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat

import orjson

from syncflow_dagster.emulators.schedulehub.batch import Batch
from syncflow_dagster.emulators.schedulehub.datacheck import (
    Group,
    canonical_names,
    check_data,
    find_invalid,
    groups_of,
)
from syncflow_dagster.emulators.schedulehub.rules import (
    CREATED,
    DELETED,
    UPDATED,
    Error,
    judge_delete,
    judge_upsert,
)
from syncflow_dagster.emulators.schedulehub.schemas import EntitySchema
from syncflow_dagster.emulators.schedulehub.state import (
    Hub,
    Row,
    encode_values,
    link,
    link_rows,
    make_row,
    parent_pairs,
)

Names = tuple[str, ...]


@dataclass
class Outcome:
    """One status per record in request order, the rejections by position, and what changed.

    ``written_ids``/``written_rows`` and ``deleted`` are the net change (each
    external_id at most once): what a journal must record so that a replay
    reaches the same state.
    """

    statuses: list[str]
    errors: dict[int, Error] = field(default_factory=dict)
    written_ids: Sequence[str] = ()
    written_rows: Sequence[Row] = ()
    deleted: list[str] = field(default_factory=list)


def apply_sequential(hub: Hub, schema: EntitySchema, batch: Batch, now: str) -> Outcome:
    """The reference: judge and apply each record in turn."""
    state = hub[schema.name]
    rows = state.rows
    outcome = Outcome([])
    touched: dict[str, Row | None] = {}
    parents_of = batch.parents
    for pos, (external_id, op) in enumerate(zip(batch.ids, batch.ops, strict=True)):
        old = rows.get(external_id)
        if op == "upsert":
            data = batch.datas[pos]
            data_hash = batch.hashes[pos]
            assert data is not None and data_hash is not None
            parents = parents_of[pos]
            status, error = judge_upsert(
                hub,
                schema,
                old,
                data_hash=data_hash,
                parents=parents,
                data_error=check_data(schema, data),
            )
            if status in (CREATED, UPDATED):
                names = canonical_names(schema, data)
                values = orjson.dumps([data[n] for n in names])[1:-1]
                row = make_row(data_hash, now, names, values, parents)
                if old is not None:
                    link_rows(hub, [old], add=False)
                else:
                    state.membership_changed()
                rows[external_id] = row
                link(hub, parents[0::2], parents[1::2])
                touched[external_id] = row
        else:
            status, error = judge_delete(hub, schema, old, external_id)
            if status == DELETED:
                assert old is not None
                del rows[external_id]
                link_rows(hub, [old], add=False)
                state.membership_changed()
                touched[external_id] = None
        outcome.statuses.append(status)
        if error is not None:
            outcome.errors[pos] = error
    outcome.written_ids = [k for k, v in touched.items() if v is not None]
    outcome.written_rows = [v for v in touched.values() if v is not None]
    outcome.deleted = [k for k, v in touched.items() if v is None]
    return outcome


def independent(hub: Hub, schema: EntitySchema, batch: Batch) -> bool:
    """Whether no record of the batch can change the answer for another one."""
    ids = batch.ids
    if len(set(ids)) != len(ids):
        return False
    own = schema.name
    if own not in schema.parents:
        return True  # parents live in other entities, which this batch does not touch
    members = set(ids)
    refs = zip(batch.ref_entities, batch.ref_ids, strict=True)
    if any(e == own and p in members for e, p in refs):
        return False
    rows = hub[own].rows
    for external_id in ids:
        old = rows.get(external_id)
        if old is not None and any(e == own and p in members for e, p in parent_pairs(old)):
            return False
    return True


def _parents_present(hub: Hub, schema: EntitySchema, batch: Batch) -> bool:
    """Whether every named parent is of an allowed entity and stored."""
    entities, ids = batch.ref_entities, batch.ref_ids
    if not ids:
        return True
    distinct = set(entities)
    if not distinct <= set(schema.parents):
        return False
    if len(distinct) == 1:
        return not set(ids).difference(hub[distinct.pop()].rows)
    return all(p in hub[e].rows for e, p in zip(entities, ids, strict=True))


def _data_errors(schema: EntitySchema, batch: Batch) -> tuple[dict[int, str], list[Group] | None]:
    """Data problems by position, and (for an all-upsert batch) the data's groups."""
    if "delete" not in batch.ops:
        groups = groups_of(schema, batch.datas)  # type: ignore[arg-type]
        return find_invalid(schema, batch.datas, groups), groups  # type: ignore[arg-type]
    upserts = [pos for pos, op in enumerate(batch.ops) if op == "upsert"]
    found = find_invalid(schema, [batch.datas[pos] for pos in upserts])  # type: ignore[misc]
    return {upserts[i]: detail for i, detail in found.items()}, None


def _new_rows(batch: Batch, now: str, names: list[Names], values: list[bytes]) -> list[Row]:
    """The rows every record of an all-upsert batch would be stored as."""
    counts = batch.ref_counts
    hashes = batch.hashes
    if counts == 0:
        return list(zip(hashes, repeat(now), names, values, strict=False))
    if counts == 1:
        return list(zip(hashes, repeat(now), names, values, batch.ref_entities, batch.ref_ids))
    return [
        make_row(h, now, n, v, p)  # type: ignore[arg-type]
        for h, n, v, p in zip(hashes, names, values, batch.parents, strict=True)
    ]


def apply_bulk(hub: Hub, schema: EntitySchema, batch: Batch, now: str) -> Outcome:
    """Judge every record against the state before the batch, then write all changes at once.

    Only valid when :func:`independent` holds.
    """
    state = hub[schema.name]
    rows = state.rows
    data_errors, groups = _data_errors(schema, batch)
    prepared: list[Row] | None = None
    if not data_errors and groups is not None and _parents_present(hub, schema, batch):
        # Every record a valid upsert: each is written unless stored and unchanged.
        names, values = encode_values(schema, batch.datas, groups)  # type: ignore[arg-type]
        prepared = _new_rows(batch, now, names, values)
        if rows.keys().isdisjoint(batch.ids):  # the common case: all new
            # Probed just before the update, the dict's slots are still in the cache.
            rows.update(zip(batch.ids, prepared, strict=True))
            state.membership_changed()
            link(hub, batch.ref_entities, batch.ref_ids)
            return Outcome([CREATED] * batch.size, written_ids=batch.ids, written_rows=prepared)
    outcome = Outcome([])
    written: list[int] = []
    olds = list(map(rows.get, batch.ids))
    parents_of = batch.parents
    for pos, (external_id, op) in enumerate(zip(batch.ids, batch.ops, strict=True)):
        if op == "upsert":
            status, error = judge_upsert(
                hub,
                schema,
                olds[pos],
                data_hash=batch.hashes[pos],  # type: ignore[arg-type]
                parents=parents_of[pos],
                data_error=data_errors.get(pos),
            )
            if status in (CREATED, UPDATED):
                written.append(pos)
        else:
            status, error = judge_delete(hub, schema, olds[pos], external_id)
            if status == DELETED:
                outcome.deleted.append(external_id)
        outcome.statuses.append(status)
        if error is not None:
            outcome.errors[pos] = error
    # Write: replaced and deleted rows stop counting as children, new rows start.
    outcome.written_ids = [batch.ids[p] for p in written]
    if prepared is not None:
        outcome.written_rows = [prepared[p] for p in written]
    else:
        names, values = encode_values(schema, [batch.datas[p] for p in written])  # type: ignore[misc]
        outcome.written_rows = [
            make_row(batch.hashes[p], now, n, v, parents_of[p])  # type: ignore[arg-type]
            for p, n, v in zip(written, names, values, strict=True)
        ]
    replaced = [old for p in written if (old := olds[p]) is not None]
    gone = [rows.pop(external_id) for external_id in outcome.deleted]
    rows.update(zip(outcome.written_ids, outcome.written_rows, strict=True))
    link_rows(hub, replaced + gone, add=False)
    link_rows(hub, outcome.written_rows, add=True)
    if gone or len(replaced) < len(written):
        state.membership_changed()
    return outcome


def apply_batch(hub: Hub, schema: EntitySchema, batch: Batch, now: str) -> Outcome:
    """Apply a batch with the contract's one-by-one semantics, in bulk where that is the same."""
    if independent(hub, schema, batch):
        return apply_bulk(hub, schema, batch, now)
    return apply_sequential(hub, schema, batch, now)
