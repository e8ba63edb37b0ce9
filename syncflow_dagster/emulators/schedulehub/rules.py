"""What one record does to the state: the contract's ingest rules, record by record.

These functions only decide; they change nothing. The sequential path applies
each decision before judging the next record; the bulk path judges every record
against the state before the batch, which gives the same answers when the
records of a batch do not depend on each other.
"""

from syncflow_dagster.emulators.schedulehub.batch import Parents
from syncflow_dagster.emulators.schedulehub.schemas import EntitySchema
from syncflow_dagster.emulators.schedulehub.state import HASH, Hub, Row

CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"
DELETED = "deleted"
NOT_FOUND = "not_found"
REJECTED = "rejected"

Error = tuple[str, str]
"""A rejection: code (missing_parent, has_children, invalid_record) and detail."""
Verdict = tuple[str, Error | None]


def judge_upsert(
    hub: Hub,
    schema: EntitySchema,
    old: Row | None,
    *,
    data_hash: str,
    parents: Parents,
    data_error: str | None,
) -> Verdict:
    """Upsert: invalid data or parent entity, then missing parent, then the outcome."""
    if data_error is not None:
        return REJECTED, ("invalid_record", data_error)
    for entity in parents[0::2]:
        if entity not in schema.parents:
            allowed = ", ".join(schema.parents) or "none"
            detail = f"parents: {entity!r} is not a parent entity of {schema.name!r}"
            return REJECTED, ("invalid_record", f"{detail} (allowed: {allowed})")
    for entity, external_id in zip(parents[0::2], parents[1::2], strict=True):
        if external_id not in hub[entity].rows:
            return REJECTED, ("missing_parent", f"parent {entity}/{external_id} is not present")
    if old is None:
        return CREATED, None
    if old[HASH] == data_hash:
        return UNCHANGED, None
    return UPDATED, None


def judge_delete(hub: Hub, schema: EntitySchema, old: Row | None, external_id: str) -> Verdict:
    """Delete: not_found when absent, has_children while records name it as parent."""
    if old is None:
        return NOT_FOUND, None
    count = hub[schema.name].child_count(external_id)
    if count:
        return REJECTED, (
            "has_children",
            f"{count} record(s) still name {schema.name}/{external_id} as parent",
        )
    return DELETED, None
