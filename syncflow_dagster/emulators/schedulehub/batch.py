"""Reading an ingest body: the JSON, the 413 and 422 rules, and the records as columns.

:func:`parse_batch` answers a :class:`Batch` or raises :class:`BatchError`
(413 or 422, nothing applied). Two readers produce the columns: the reference,
:func:`read_records`, checks record by record and names the first problem; the
fast one, :func:`read_records_fast`, checks whole columns in a few C-level passes
and gives up (None) on anything unusual, leaving it to the reference. Whenever
the fast reader answers, its answer equals the reference's.
"""

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any

import orjson

MAX_RECORDS = 1000
OPS = frozenset({"upsert", "delete"})
ID_WIDTH = 32
HASH_WIDTH = 64

Parents = tuple[str, ...]
"""A record's parents, flat: (entity, external_id, entity, external_id, ...)."""
Data = dict[str, Any]


class BatchError(Exception):
    """The whole request is refused: HTTP status and the problem's detail."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(slots=True)
class Batch:
    """An ingest batch that passed the wire checks, as columns in request order.

    ``datas`` and ``hashes`` are None where a delete leaves them out. The parents
    named by all records, in order, are ``ref_entities`` / ``ref_ids``;
    ``ref_counts`` says how many each record names (one int when all name as many).
    """

    batch_id: str
    ids: Sequence[str]
    ops: Sequence[str]
    datas: Sequence[Data | None]
    hashes: Sequence[str | None]
    ref_entities: Sequence[str]
    ref_ids: Sequence[str]
    ref_counts: Sequence[int] | int
    _parents: list[Parents] | None = field(default=None, compare=False, repr=False)

    @property
    def size(self) -> int:
        """How many records the batch holds."""
        return len(self.ids)

    @property
    def parents(self) -> list[Parents]:
        """Each record's parents as a flat tuple (built on first use)."""
        if self._parents is None:
            self._parents = _per_record(self.ref_entities, self.ref_ids, self.ref_counts, self.size)
        return self._parents


def _per_record(
    entities: Sequence[str], ids: Sequence[str], counts: Sequence[int] | int, size: int
) -> list[Parents]:
    if isinstance(counts, int):
        if counts == 0:
            return [()] * size
        if counts == 1:
            return list(zip(entities, ids, strict=True))
        counts = [counts] * size
    out: list[Parents] = []
    at = 0
    for count in counts:
        pairs = zip(entities[at : at + count], ids[at : at + count], strict=True)
        out.append(tuple(chain.from_iterable(pairs)))
        at += count
    return out


def _counts(counts: list[int]) -> list[int] | int:
    distinct = set(counts)
    if len(distinct) > 1:
        return counts
    return distinct.pop() if distinct else 0


class _Missing:
    """Marks a key absent from a record (distinct from an explicit null)."""


_MISSING = _Missing()


def _is_hex(value: object, width: int) -> bool:
    return (
        type(value) is str and len(value) == width and all(c in "0123456789abcdef" for c in value)
    )


def all_hex(values: Sequence[Any], width: int) -> bool:
    """True only if every value is a string of ``width`` lowercase hex digits.

    Joined with spaces, the values must put a space exactly every width+1
    characters, and ``bytes.fromhex`` (which skips whitespace between digit
    pairs) must read width/2 bytes per value: then there is no other space or
    non-hex character, so each value is exactly ``width`` hex digits.
    """
    if not values:
        return True
    try:
        joined = " ".join(values)
    except TypeError:  # not all strings
        return False
    n = len(values)
    if len(joined) != (width + 1) * n - 1 or joined[width :: width + 1] != " " * (n - 1):
        return False
    try:
        raw = bytes.fromhex(joined)
    except ValueError:
        return False
    return len(raw) * 2 == width * n and joined.lower() == joined


def _record_error(pos: int, rec: Any) -> tuple[str | None, Any, list[tuple[str, str]]]:
    """The first wire problem of one record (or None), its data and its parents."""
    where = f"records[{pos}]"
    if not isinstance(rec, dict):
        return f"{where} must be an object", None, []
    if "external_id" not in rec:
        return f"{where}.external_id is required", None, []
    if not _is_hex(rec["external_id"], ID_WIDTH):
        return f"{where}.external_id must be {ID_WIDTH} lowercase hex characters", None, []
    op = rec.get("op", _MISSING)
    if op is _MISSING:
        return f"{where}.op is required", None, []
    if type(op) is not str or op not in OPS:
        return f"{where}.op must be 'upsert' or 'delete'", None, []
    data = rec.get("data", _MISSING)
    if data is _MISSING:
        if op == "upsert":
            return f"{where}.data is required for an upsert", None, []
        data = None
    elif type(data) is not dict:
        return f"{where}.data must be an object", None, []
    data_hash = rec.get("data_hash", _MISSING)
    if data_hash is _MISSING:
        if op == "upsert":
            return f"{where}.data_hash is required for an upsert", None, []
    elif not _is_hex(data_hash, HASH_WIDTH):
        return f"{where}.data_hash must be {HASH_WIDTH} lowercase hex characters", None, []
    raw_parents = rec.get("parents", [])
    if type(raw_parents) is not list:
        return f"{where}.parents must be an array", None, []
    pairs: list[tuple[str, str]] = []
    for j, ref in enumerate(raw_parents):
        at = f"{where}.parents[{j}]"
        if type(ref) is not dict or "entity" not in ref or "external_id" not in ref:
            return f"{at} must be an object with entity and external_id", None, []
        if type(ref["entity"]) is not str:
            return f"{at}.entity must be a string", None, []
        if not _is_hex(ref["external_id"], ID_WIDTH):
            return f"{at}.external_id must be {ID_WIDTH} lowercase hex characters", None, []
        pairs.append((sys.intern(ref["entity"]), ref["external_id"]))
    return None, data, pairs


def read_records(batch_id: str, records: list[Any]) -> Batch:
    """The reference reader: record by record; raises BatchError(422) at the first problem."""
    ids: list[str] = []
    ops: list[str] = []
    datas: list[Data | None] = []
    hashes: list[str | None] = []
    entities: list[str] = []
    parent_ids: list[str] = []
    counts: list[int] = []
    for pos, rec in enumerate(records):
        error, data, pairs = _record_error(pos, rec)
        if error is not None:
            raise BatchError(422, error)
        ids.append(rec["external_id"])
        ops.append(rec["op"])
        datas.append(data)
        hashes.append(rec.get("data_hash"))
        entities.extend(e for e, _ in pairs)
        parent_ids.extend(p for _, p in pairs)
        counts.append(len(pairs))
    return Batch(batch_id, ids, ops, datas, hashes, entities, parent_ids, _counts(counts))


_RECORD = itemgetter("external_id", "op", "data", "data_hash", "parents")
_ENTITY = itemgetter("entity")
_EXTERNAL_ID = itemgetter("external_id")


def _columns(records: list[Any]) -> tuple[Sequence[Any], ...] | None:
    """external_id, op, data, data_hash, parents of each record (absent: _MISSING)."""
    try:
        return tuple(zip(*map(_RECORD, records), strict=True))
    except KeyError:
        pass
    except TypeError:  # a record that is not an object
        return None
    if set(map(type, records)) != {dict}:
        return None
    return tuple(
        [r.get(key, _MISSING) for r in records]
        for key in ("external_id", "op", "data", "data_hash", "parents")
    )


def _fill(column: Sequence[Any], ops: Sequence[str]) -> list[Any] | None:
    """Absent values as None, or None when an upsert lacks the value."""
    if all(op == "delete" for op, v in zip(ops, column, strict=True) if v is _MISSING):
        return [None if v is _MISSING else v for v in column]
    return None


def _refs(column: Sequence[Any]) -> tuple[Sequence[str], Sequence[str], list[int] | int] | None:
    """The parents named, flattened: entities, external_ids, counts per record."""
    kinds = set(map(type, column))
    if not kinds <= {list, _Missing}:
        return None
    lists = [[] if v is _MISSING else v for v in column] if _Missing in kinds else column
    counts = _counts(list(map(len, lists)))
    refs = list(chain.from_iterable(lists))
    if not refs:
        return [], [], counts
    try:
        entities = list(map(_ENTITY, refs))
        parent_ids = list(map(_EXTERNAL_ID, refs))
        distinct = set(entities)
    except (KeyError, TypeError):  # a ref not an object, lacking a key, or an odd entity
        return None
    if not all(type(e) is str for e in distinct) or not all_hex(parent_ids, ID_WIDTH):
        return None
    if len(distinct) == 1:  # one shared string, not one copy per record
        return [sys.intern(distinct.pop())] * len(entities), parent_ids, counts
    return list(map(sys.intern, entities)), parent_ids, counts


def read_records_fast(batch_id: str, records: list[Any]) -> Batch | None:
    """The fast reader: whole columns at once; None when anything is unusual."""
    if not records:
        return Batch(batch_id, [], [], [], [], [], [], 0)
    columns = _columns(records)
    if columns is None:
        return None
    ids, ops, datas, hashes, parents = columns
    if not all_hex(ids, ID_WIDTH):
        return None
    try:
        if not set(ops) <= OPS:
            return None
    except TypeError:  # an unhashable op
        return None
    kinds = set(map(type, datas))
    if kinds != {dict}:
        filled = _fill(datas, ops) if kinds <= {dict, _Missing} else None
        if filled is None:
            return None
        datas = filled
    if not all_hex(hashes, HASH_WIDTH):
        present = [h for h in hashes if h is not _MISSING]
        filled = _fill(hashes, ops)
        if filled is None or not all_hex(present, HASH_WIDTH):
            return None
        hashes = filled
    refs = _refs(parents)
    if refs is None:
        return None
    return Batch(batch_id, ids, ops, datas, hashes, *refs)


def parse_batch(body: bytes) -> Batch:
    """Read and check an ingest body.

    Raises:
        BatchError: 413 for more than MAX_RECORDS records, 422 for a malformed body.
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BatchError(422, "the body is not valid JSON") from None
    if type(doc) is not dict:
        raise BatchError(422, "the body must be a JSON object")
    records = doc.get("records", _MISSING)
    if type(records) is list and len(records) > MAX_RECORDS:
        raise BatchError(
            413, f"a batch holds at most {MAX_RECORDS} records, this one has {len(records)}"
        )
    if "batch_id" not in doc:
        raise BatchError(422, "batch_id is required")
    batch_id = doc["batch_id"]
    if type(batch_id) is not str:
        raise BatchError(422, "batch_id must be a string")
    if records is _MISSING:
        raise BatchError(422, "records is required")
    if type(records) is not list:
        raise BatchError(422, "records must be an array")
    return read_records_fast(batch_id, records) or read_records(batch_id, records)
