"""Whether JSON values fit a field type: one value at a time, or a whole column at once.

Types as the contract names them:

* ``string``;
* ``integer``: a JSON integer (not a boolean, not ``1.0``);
* ``number``: an integer or a fraction (not a boolean);
* ``boolean``;
* ``date``: ``YYYY-MM-DD``, a real date;
* ``datetime``: ``YYYY-MM-DDTHH:MM[:SS[.fraction]]`` then ``Z`` or an offset
  ``±HH[:MM]``, a real instant (the extended ISO 8601 form; the time and offset
  grammar is Python's ``datetime.fromisoformat``).

``null`` is not a value of any type: callers decide whether a field may be null.

:func:`column_ok` is the fast path: a few C-level passes over a column. It says
True exactly when :func:`value_ok` holds for every value; callers find the
offending values of a failed column one by one with :func:`value_ok`.
"""

from collections.abc import Callable, Sequence
from datetime import date, datetime
from operator import attrgetter, itemgetter

TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "date": "a date (YYYY-MM-DD)",
    "datetime": "a datetime (ISO 8601 with Z or an offset)",
}
_DATE_LEN = 10
_DATE_SHAPE = itemgetter(4, 7)  # the dashes of YYYY-MM-DD
_DATE_DASHES = ("-", "-")
_DATETIME_SHAPE = itemgetter(4, 7, 10, 13)  # YYYY-MM-DDTHH:
_DATETIME_MARKS = ("-", "-", "T", ":")
_TZINFO = attrgetter("tzinfo")


def _date_ok(value: str) -> bool:
    if len(value) != _DATE_LEN or _DATE_SHAPE(value) != _DATE_DASHES:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _datetime_ok(value: str) -> bool:
    if len(value) < 14 or _DATETIME_SHAPE(value) != _DATETIME_MARKS:
        return False
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


_VALUE_CHECKS: dict[str, Callable[[object], bool]] = {
    "string": lambda v: type(v) is str,
    "integer": lambda v: type(v) is int,
    "number": lambda v: type(v) in (int, float),
    "boolean": lambda v: type(v) is bool,
    "date": lambda v: type(v) is str and _date_ok(v),
    "datetime": lambda v: type(v) is str and _datetime_ok(v),
}


def value_ok(type_: str, value: object) -> bool:
    """Whether a non-null value is of the field type (the reference rule)."""
    return _VALUE_CHECKS[type_](value)


def _all_str(values: Sequence[object]) -> bool:
    try:
        "".join(values)  # type: ignore[arg-type]
    except TypeError:
        return False
    return True


def _all_parse(parse: Callable[[str], object], values: Sequence[str]) -> list[object] | None:
    try:
        return list(map(parse, values))
    except ValueError:
        return None


class _Known:
    """Texts already found valid for a type, so that repeated dates are checked once."""

    def __init__(self, check: Callable[[Sequence[object]], bool], limit: int = 200_000) -> None:
        self._check = check
        self._limit = limit
        self._valid: set[object] = set()

    def __call__(self, values: Sequence[object], nullable: bool = False) -> bool:
        try:
            fresh = set(values).difference(self._valid)
        except TypeError:  # an unhashable value: not a string
            return False
        if nullable:
            fresh.discard(None)
        if not fresh:
            return True
        texts = list(fresh)
        if not self._check(texts):
            return False
        if len(self._valid) > self._limit:
            self._valid.clear()
        self._valid.update(texts)
        return True


def _dates_ok(values: Sequence[object]) -> bool:
    try:
        joined = "".join(values)  # type: ignore[arg-type]
    except TypeError:  # not all strings
        return False
    texts: Sequence[str] = values  # type: ignore[assignment]
    n = len(texts)
    # date.fromisoformat reads only 7, 8 or 10 characters: if all parse and the
    # total is 10 per value, every value has 10, and its dashes sit at 4 and 7.
    return (
        len(joined) == _DATE_LEN * n
        and joined[4::_DATE_LEN] == "-" * n
        and joined[7::_DATE_LEN] == "-" * n
        and _all_parse(date.fromisoformat, texts) is not None
    )


def _datetimes_ok(values: Sequence[object]) -> bool:
    if not _all_str(values):
        return False
    texts: Sequence[str] = values  # type: ignore[assignment]
    try:
        if set(map(_DATETIME_SHAPE, texts)) != {_DATETIME_MARKS}:
            return False
    except IndexError:  # too short
        return False
    parsed = _all_parse(datetime.fromisoformat, texts)
    return parsed is not None and None not in list(map(_TZINFO, parsed))


_NONE = type(None)
_TYPE_SETS = {
    "string": frozenset({str}),
    "integer": frozenset({int}),
    "number": frozenset({int, float}),
    "boolean": frozenset({bool}),
}
_KNOWN = {"date": _Known(_dates_ok), "datetime": _Known(_datetimes_ok)}


def column_ok(type_: str, values: Sequence[object], nullable: bool) -> bool:
    """True exactly when every value is of the type (or null, when ``nullable``)."""
    if not values:
        return True
    known = _KNOWN.get(type_)
    if known is not None:  # dates and datetimes: strings checked once per distinct text
        return known(values, nullable)
    if type_ == "string" and _all_str(values):
        return True
    allowed = _TYPE_SETS[type_] | {_NONE} if nullable else _TYPE_SETS[type_]
    return set(map(type, values)) <= allowed


def describe(value: object) -> str:
    """A short description of a JSON value for an error detail."""
    kind = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }.get(type(value), type(value).__name__)
    if isinstance(value, (list, dict)):
        return kind
    text = repr(value) if isinstance(value, str) else str(value).lower()
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{kind} {text}"
