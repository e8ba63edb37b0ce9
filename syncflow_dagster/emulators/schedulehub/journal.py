"""Persistence in SQLite: an append-only journal of applied changes, compacted on open.

Each applied batch that changed something appends one row: the entity, a small
JSON document (external_ids, data hashes, parents, updated_at, data sizes,
deleted ids — fixed-width ids and hashes joined into one string each) and the
records' data as one blob (their JSON, concatenated). One row per batch keeps
the write cost per request to a single insert; a table with one row per record
costs a B-tree insert per record and could not keep up.

Opening replays the rows in order into the live state, then rewrites the journal
as a snapshot (chunks of CHUNK records per entity) when it holds superseded rows.

A row is written before the response is sent, so a process that dies (even by
SIGKILL) keeps every batch it acknowledged. The file uses 64 KiB pages, a
rollback journal and ``synchronous=OFF``: SQLite hands each commit to the
operating system without waiting for the disk, which is what an emulator needs;
an operating-system crash or power loss could lose or damage recent commits.
"""

import sqlite3
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import accumulate, chain
from operator import itemgetter
from typing import Any

import orjson

from syncflow_dagster.emulators.schedulehub.batch import HASH_WIDTH, ID_WIDTH
from syncflow_dagster.emulators.schedulehub.datacheck import shared_names
from syncflow_dagster.emulators.schedulehub.state import (
    FIRST_PARENT,
    HASH,
    NAMES,
    UPDATED_AT,
    VALUES,
    Row,
)

CHUNK = 20_000

_DDL = """
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY,
    entity TEXT NOT NULL,
    meta BLOB NOT NULL,
    data BLOB NOT NULL
)
"""
_INSERT = "INSERT INTO journal (entity, meta, data) VALUES (?, ?, ?)"


def _split(joined: str, width: int) -> list[str]:
    return [joined[i : i + width] for i in range(0, len(joined), width)]


def _encode_parents(rows: Sequence[Row]) -> dict[str, Any]:
    lengths = set(map(len, rows))
    if lengths == {FIRST_PARENT}:
        return {"counts": 0, "entities": [], "ids": ""}
    if lengths == {FIRST_PARENT + 2}:
        entities = list(map(itemgetter(FIRST_PARENT), rows))
        parent_ids: Iterable[str] = map(itemgetter(FIRST_PARENT + 1), rows)
        counts: int | list[int] = 1
    else:
        flat = [x for row in rows for x in row[FIRST_PARENT:]]
        entities, parent_ids = flat[0::2], flat[1::2]
        counts = [(len(row) - FIRST_PARENT) // 2 for row in rows]
    distinct = set(entities)
    return {
        "counts": counts,
        "entities": distinct.pop() if len(distinct) == 1 else entities,
        "ids": "".join(parent_ids),
    }


def _decode_parents(parents: dict[str, Any], n: int) -> list[tuple[str, ...]]:
    counts = parents["counts"]
    parent_ids = _split(parents["ids"], ID_WIDTH)
    entities = parents["entities"]
    if isinstance(entities, str):
        entities = [entities] * len(parent_ids)
    flat = [x for pair in zip(map(sys.intern, entities), parent_ids, strict=True) for x in pair]
    if isinstance(counts, int):
        counts = [counts] * n
    out = []
    at = 0
    for count in counts:
        out.append(tuple(flat[at : at + 2 * count]))
        at += 2 * count
    return out


def _encode(ids: Sequence[str], rows: Sequence[Row], deleted: Sequence[str]) -> tuple[bytes, bytes]:
    stamps = {row[UPDATED_AT] for row in rows}
    blobs = list(map(itemgetter(VALUES), rows))
    distinct = {id(names): names for names in map(itemgetter(NAMES), rows)}
    index = {key: i for i, key in enumerate(distinct)}
    meta = {
        "names": list(distinct.values()),
        "name_of": 0 if len(index) <= 1 else [index[id(row[NAMES])] for row in rows],
        "ids": "".join(ids),
        "hashes": "".join(map(itemgetter(HASH), rows)),
        "parents": _encode_parents(rows),
        "updated_at": stamps.pop() if len(stamps) == 1 else [row[UPDATED_AT] for row in rows],
        "sizes": list(map(len, blobs)),
        "deleted": "".join(deleted),
    }
    return orjson.dumps(meta), b"".join(blobs)


def _decode(meta_blob: bytes, data: bytes) -> tuple[dict[str, Row], list[str]]:
    meta = orjson.loads(meta_blob)
    ids = _split(meta["ids"], ID_WIDTH)
    ends = list(accumulate(meta["sizes"]))
    blobs = [data[start:end] for start, end in zip(chain((0,), ends), ends, strict=False)]
    stamps = meta["updated_at"]
    if isinstance(stamps, str):
        stamps = [sys.intern(stamps)] * len(ids)
    known = [shared_names(tuple(n)) for n in meta["names"]]
    name_of = meta["name_of"]
    if isinstance(name_of, list):
        names = [known[i] for i in name_of]
    else:
        names = [known[0]] * len(ids) if ids else []
    rows = {
        external_id: (data_hash, stamp, names_, blob, *parents)
        for external_id, data_hash, stamp, names_, blob, parents in zip(
            ids,
            _split(meta["hashes"], HASH_WIDTH),
            stamps,
            names,
            blobs,
            _decode_parents(meta["parents"], len(ids)),
            strict=True,
        )
    }
    return rows, _split(meta["deleted"], ID_WIDTH)


class Journal:
    """The SQLite file behind a store; all calls come under the store's lock."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA page_size=65536")  # takes effect when the file is new
        self._db.execute("PRAGMA journal_mode=TRUNCATE")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(_DDL)

    def replay(self) -> Iterator[tuple[str, dict[str, Row], list[str]]]:
        """The journal's changes in order: entity, rows written, ids deleted."""
        for entity, meta, data in self._db.execute(
            "SELECT entity, meta, data FROM journal ORDER BY seq"
        ):
            rows, deleted = _decode(meta, data)
            yield entity, rows, deleted

    def append(
        self, entity: str, ids: Sequence[str], rows: Sequence[Row], deleted: Sequence[str]
    ) -> None:
        """Record one batch's net change (committed when this returns)."""
        meta, data = _encode(ids, rows, deleted)
        self._db.execute(_INSERT, (entity, meta, data))

    def compact(self, entities: Mapping[str, Mapping[str, Row]]) -> None:
        """Rewrite the journal as a snapshot of the given state, if it holds more rows than that."""
        needed = sum(-(-len(rows) // CHUNK) for rows in entities.values())
        (count,) = self._db.execute("SELECT count(*) FROM journal").fetchone()
        if count <= needed:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("DELETE FROM journal")
            for entity, rows in entities.items():
                ids = list(rows)
                values = list(rows.values())
                for start in range(0, len(ids), CHUNK):
                    end = start + CHUNK
                    meta, data = _encode(ids[start:end], values[start:end], [])
                    self._db.execute(_INSERT, (entity, meta, data))
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the SQLite connection."""
        self._db.close()
