"""The hub's live state: each entity's stored records and how many records name each as parent.

A stored record is one flat tuple, the cheapest thing to keep a million of::

    (data_hash, updated_at, names, values, parent_entity, parent_id, parent_entity, ...)

``names`` is the data's field names in schema order (one tuple shared by every
record with the same fields) and ``values`` the JSON of the values in that order,
without the brackets (see :func:`encode_values`): the data, compactly.
``updated_at`` is ISO 8601 UTC.
"""

from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import orjson

from syncflow_dagster.emulators.schedulehub.batch import Parents
from syncflow_dagster.emulators.schedulehub.datacheck import Group, groups_of
from syncflow_dagster.emulators.schedulehub.schemas import EntitySchema

Row = tuple[Any, ...]
HASH: Final = 0
UPDATED_AT: Final = 1
NAMES: Final = 2
VALUES: Final = 3
FIRST_PARENT: Final = 4


def make_row(
    data_hash: str, updated_at: str, names: tuple[str, ...], values: bytes, parents: Parents
) -> Row:
    """A stored record from its parts."""
    return (data_hash, updated_at, names, values, *parents)


def row_parents(row: Row) -> Parents:
    """The record's parents, flat: (entity, external_id, ...)."""
    return row[FIRST_PARENT:]


def parent_pairs(row: Row) -> Iterator[tuple[str, str]]:
    """The record's parents as (entity, external_id) pairs."""
    return zip(row[FIRST_PARENT::2], row[FIRST_PARENT + 1 :: 2], strict=True)


def data_of(row: Row) -> dict[str, Any]:
    """The record's data."""
    return dict(zip(row[NAMES], orjson.loads(b"[" + row[VALUES] + b"]"), strict=True))


def encode_values(
    schema: EntitySchema, datas: Sequence[dict[str, Any]], groups: list[Group] | None = None
) -> tuple[list[tuple[str, ...]], list[bytes]]:
    """Each (valid) data's names and values, as stored.

    One ``orjson.dumps`` of a group's value tuples, split at the record
    boundaries, is far cheaper than one dumps per record: dumps starts every
    output in a fresh 4 KiB buffer, and keeping many of those costs a page fault
    each. Valid values are scalars, so ``],[`` occurs only inside strings: when
    splitting there gives one part per record, the cuts are the boundaries.
    ``groups`` is :func:`groups_of` the same datas, when the caller has it.
    """
    if groups is None:
        groups = groups_of(schema, datas)
    if len(groups) == 1:
        names, _, values = groups[0]
        return [names] * len(datas), split_values(values)
    all_names: list[tuple[str, ...]] = [()] * len(datas)
    blobs: list[bytes] = [b""] * len(datas)
    for names, positions, values in groups:
        for pos, blob in zip(positions, split_values(values), strict=True):
            all_names[pos] = names
            blobs[pos] = blob
    return all_names, blobs


def split_values(values: list[tuple[Any, ...]]) -> list[bytes]:
    """Each value tuple as stored: its JSON without the brackets (see :func:`encode_values`)."""
    if not values:
        return []
    parts = orjson.dumps(values)[2:-2].split(b"],[")
    if len(parts) == len(values):
        return parts
    return [orjson.dumps(v)[1:-1] for v in values]


PENDING_LIMIT = 4_000_000
"""Queued parent references folded into the counts at the latest after this many."""


class EntityState:
    """One entity: records by external_id, and the reverse parent index for ``has_children``.

    The index counts, per record, how many records name it as parent. Writes
    queue their parent references (one list per batch, no per-reference work)
    and the queue is folded into the counts when a count is read — by a delete,
    which needs it for ``has_children`` — or when it grows past PENDING_LIMIT.
    Ingest of upserts, the hot path, so pays nothing for the index until a
    delete needs it; the fold costs what counting on the spot would have.
    """

    __slots__ = ("_children", "_pending", "_pending_size", "_sorted", "name", "rows")

    def __init__(self, name: str) -> None:
        self.name = name
        self.rows: dict[str, Row] = {}
        self._children: Counter[str] = Counter()
        self._pending: list[tuple[Sequence[str], bool]] = []
        self._pending_size = 0
        self._sorted: list[str] | None = None

    def add_children(self, parent_ids: Sequence[str], *, add: bool = True) -> None:
        """One more (or, add=False, one less) child for each of these records."""
        if not parent_ids:
            return
        self._pending.append((parent_ids, add))
        self._pending_size += len(parent_ids)
        if self._pending_size > PENDING_LIMIT:
            self._fold()

    def child_count(self, external_id: str) -> int:
        """How many stored records name this record as parent."""
        if self._pending:
            self._fold()
        return self._children.get(external_id, 0)

    def _fold(self) -> None:
        children = self._children
        for parent_ids, add in self._pending:
            if add:
                children.update(parent_ids)
                continue
            for external_id in parent_ids:
                left = children[external_id] - 1
                if left > 0:
                    children[external_id] = left
                else:
                    del children[external_id]
        self._pending.clear()
        self._pending_size = 0

    def sorted_ids(self) -> list[str]:
        """The stored external_ids in order (rebuilt after records were added or removed)."""
        if self._sorted is None:
            self._sorted = sorted(self.rows)
        return self._sorted

    def membership_changed(self) -> None:
        """Records were added or removed: the sorted id list must be rebuilt."""
        self._sorted = None


Hub = Mapping[str, EntityState]


def link(hub: Hub, entities: Sequence[str], ids: Sequence[str], *, add: bool = True) -> None:
    """Count one more (add=False: one less) child for each named parent (entities[i], ids[i])."""
    if not ids:
        return
    distinct = set(entities)
    if len(distinct) == 1:
        hub[distinct.pop()].add_children(ids, add=add)
        return
    grouped: defaultdict[str, list[str]] = defaultdict(list)
    for entity, external_id in zip(entities, ids, strict=True):
        grouped[entity].append(external_id)
    for entity, group in grouped.items():
        hub[entity].add_children(group, add=add)


def link_rows(hub: Hub, rows: Sequence[Row], *, add: bool) -> None:
    """Count (add) or uncount the parents the given rows name."""
    if not rows:
        return
    flat = [x for row in rows for x in row[FIRST_PARENT:]]
    link(hub, flat[0::2], flat[1::2], add=add)
