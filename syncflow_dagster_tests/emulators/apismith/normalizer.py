"""A reference normalizer, written plainly per value, used to check the emulator's data.

It reads every form of the contract's "Value forms" table back to a true value, so the
tests can show that the served raw rows mean exactly the ground truth.
"""

import unicodedata
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from syncflow_dagster.emulators.apismith.schema import Column, Entity

_DATE_FORMATS = [
    "%d-%b-%y",
    "%d-%b-%Y",
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y%m%d",
]


class UnreadableError(ValueError):
    """A raw value no form explains."""


def _edge_junk(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch) == "Cc"


def clean_text(raw: str) -> str | None:
    start, end = 0, len(raw)
    while start < end and _edge_junk(raw[start]):
        start += 1
    while end > start and _edge_junk(raw[end - 1]):
        end -= 1
    text = unicodedata.normalize("NFC", raw[start:end])
    return text or None


def number(raw: object, scale: int) -> Decimal | int | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise UnreadableError(repr(raw))
    if isinstance(raw, int | float):
        value = Decimal(str(raw))
    else:
        assert isinstance(raw, str)
        text = raw.strip().replace(",", "")
        if not text:
            return None
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise UnreadableError(raw) from None
        if not value.is_finite():
            raise UnreadableError(raw)
    if scale == 0:
        if value != value.to_integral_value():
            raise UnreadableError(repr(raw))
        return int(value)
    return value.quantize(Decimal(1).scaleb(-scale))


def date(raw: object) -> datetime | None:
    if raw is None:
        return None
    assert isinstance(raw, str)
    text = raw.strip()
    if not text:
        return None
    for fmt in _DATE_FORMATS:
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        if fmt == "%d-%b-%y":  # Oracle RR: 00-49 -> 20xx, 50-99 -> 19xx
            year = parsed.year % 100
            parsed = parsed.replace(year=(2000 if year < 50 else 1900) + year)
        return parsed
    raise UnreadableError(raw)


def timestamp(raw: object) -> datetime | None:
    if raw is None:
        return None
    assert isinstance(raw, str)
    text = raw.strip()
    try:
        if "T" in text:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        else:
            parsed = datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f %z")
    except ValueError:
        raise UnreadableError(raw) from None
    if parsed.tzinfo is None:
        raise UnreadableError(raw)
    return parsed.astimezone(UTC)


def flag(raw: object) -> bool | None:
    if raw is None:
        return None
    assert isinstance(raw, str)
    text = raw.strip().upper()
    if text in ("Y", "1", "T"):
        return True
    if text in ("N", "0", "F"):
        return False
    raise UnreadableError(raw)


def value(col: Column, raw: object) -> object:
    """The true value of one raw value of ``col``."""
    kind = col.kind
    if kind == "number":
        return number(raw, col.scale)
    if kind == "date":
        return date(raw)
    if kind == "tstz":
        return timestamp(raw)
    if kind == "flag":
        return flag(raw)
    if raw is None:
        return None
    assert isinstance(raw, str)
    if kind == "char":
        return raw.rstrip(" ") or None
    return clean_text(raw)


def row(entity: Entity, raw: dict[str, object]) -> dict[str, object]:
    """A whole raw record as true values (raises UnreadableError on the first bad value)."""
    return {col.name: value(col, raw.get(col.name)) for col in entity.columns}
