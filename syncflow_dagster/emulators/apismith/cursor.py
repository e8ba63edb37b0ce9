"""Opaque, stateless paging cursors: base64url of the last position returned.

A records cursor holds (entity, rowversion, raw key) of the last record of a page, a keys
cursor holds (entity, raw key) of the last key. Nothing is kept on the server, so a cursor
stays valid forever and across restarts; resuming is "strictly after this position".
"""

import base64
import binascii

import orjson

from syncflow_dagster.emulators.apismith.schema import Entity
from syncflow_dagster.emulators.apismith.store import KeyTuple


class CursorError(ValueError):
    """A cursor that this server did not issue for this entity and listing."""


def _encode(payload: list[object]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode()


def _decode(text: str) -> object:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise CursorError("cursor is not one this server issued") from None


def _check_key(entity: Entity, key: object) -> KeyTuple:
    if not isinstance(key, list) or len(key) != len(entity.key):
        raise CursorError("cursor is not one this server issued")
    for col, value in zip(entity.key_columns, key, strict=True):
        wanted = int if col.kind == "number" else str
        if isinstance(value, bool) or not isinstance(value, wanted):
            raise CursorError("cursor is not one this server issued")
    return tuple(key)


def encode_records(entity: Entity, rowversion: int, key: KeyTuple) -> str:
    """The cursor that resumes after the record at (rowversion, key)."""
    return _encode(["r", entity.name, rowversion, list(key)])


def decode_records(entity: Entity, text: str) -> tuple[int, KeyTuple]:
    """The (rowversion, key) a records cursor resumes after."""
    payload = _decode(text)
    if not (isinstance(payload, list) and len(payload) == 4 and payload[0] == "r"):
        raise CursorError("cursor is not a records cursor")
    if payload[1] != entity.name:
        raise CursorError(f"cursor belongs to another entity, not {entity.name}")
    rowversion = payload[2]
    if isinstance(rowversion, bool) or not isinstance(rowversion, int) or rowversion < 0:
        raise CursorError("cursor is not one this server issued")
    return rowversion, _check_key(entity, payload[3])


def encode_keys(entity: Entity, key: KeyTuple) -> str:
    """The cursor that resumes after ``key``."""
    return _encode(["k", entity.name, list(key)])


def decode_keys(entity: Entity, text: str) -> KeyTuple:
    """The key a keys cursor resumes after."""
    payload = _decode(text)
    if not (isinstance(payload, list) and len(payload) == 3 and payload[0] == "k"):
        raise CursorError("cursor is not a keys cursor")
    if payload[1] != entity.name:
        raise CursorError(f"cursor belongs to another entity, not {entity.name}")
    return _check_key(entity, payload[2])
