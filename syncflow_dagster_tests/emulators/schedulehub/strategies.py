"""Hypothesis strategies: JSON values, entity data (valid or not), ingest records and batches."""

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from syncflow_dagster.emulators.schedulehub.schemas import EntitySchema, FieldSpec

IDS = [f"{i:032x}" for i in range(1, 7)]
HASHES = [f"{i:064x}" for i in range(3)]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)

_zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
)
_dates = st.dates(date(1, 1, 1), date(9999, 12, 31)).map(date.isoformat)
_aware = st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30), timezones=_zones).flatmap(
    lambda d: st.sampled_from(
        [
            d.isoformat(),
            d.isoformat(timespec="minutes"),
            d.isoformat(timespec="milliseconds"),
            d.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        ]
    )
)
# Strings that look like dates and datetimes but are not (or are, by accident).
_near_dates = st.one_of(
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", fullmatch=True),
    st.from_regex(r"[0-9]{4}-W[0-9]{2}-[0-9]", fullmatch=True),
    st.from_regex(r"[0-9]{8}", fullmatch=True),
    st.from_regex(r"[0-9]{4}-[0-9]-[0-9]{3}", fullmatch=True),
    _dates.map(lambda s: s + "T00:00:00Z"),
    _dates.map(lambda s: s.replace("-", "/")),
)
_near_datetimes = st.one_of(
    st.from_regex(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}"
        r"(:[0-9]{2}(\.[0-9]{1,8})?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?",
        fullmatch=True,
    ),
    _aware.map(lambda s: s.replace("T", "t")),
    _aware.map(lambda s: s[:19]),
    _aware.map(lambda s: s.replace("-", "", 2)),
    _dates,
)

VALID: dict[str, st.SearchStrategy[Any]] = {
    "string": st.text(max_size=8),
    "integer": st.integers(-(2**40), 2**40),
    "number": st.one_of(
        st.integers(-(2**40), 2**40), st.floats(allow_nan=False, allow_infinity=False)
    ),
    "boolean": st.booleans(),
    "date": _dates,
    "datetime": _aware,
}
NEAR: dict[str, st.SearchStrategy[Any]] = {
    "string": scalars,
    "integer": st.one_of(
        st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.text(max_size=3)
    ),
    "number": st.one_of(st.booleans(), st.text(max_size=3), st.none()),
    "boolean": st.one_of(st.integers(0, 1), st.text(max_size=3)),
    "date": st.one_of(_near_dates, scalars),
    "datetime": st.one_of(_near_datetimes, scalars),
}


def field_value(spec: FieldSpec, valid_rate: float = 0.9) -> st.SearchStrategy[Any]:
    """A value for a field: mostly of its type, sometimes near-misses or null."""
    good = VALID[spec.type]
    if not spec.required:
        good = st.one_of(good, st.none())
    if valid_rate >= 1:
        return good
    weight = int(valid_rate * 10)
    return st.one_of(*([good] * weight), NEAR[spec.type], json_values)


@st.composite
def entity_data(draw: st.DrawFn, schema: EntitySchema, valid_rate: float = 0.9) -> dict[str, Any]:
    """Data for an entity: each field present or not, mostly valid, sometimes an extra field."""
    data: dict[str, Any] = {}
    for spec in schema.fields:
        if valid_rate >= 1 and spec.required:
            present = True
        else:
            present = draw(st.sampled_from([True] * 8 + [False] * (1 if spec.required else 3)))
        if present:
            data[spec.name] = draw(field_value(spec, valid_rate))
    if valid_rate < 1 and draw(st.integers(0, 19)) == 0:
        data[draw(st.sampled_from(["extra", "colour", ""]))] = draw(json_values)
    if draw(st.booleans()):
        names = list(data)
        draw(st.randoms()).shuffle(names)
        data = {n: data[n] for n in names}
    return data


def parent_refs(entities: list[str]) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Parent references among the given entities and the shared id pool."""
    ref = st.fixed_dictionaries(
        {"entity": st.sampled_from(entities), "external_id": st.sampled_from(IDS)}
    )
    return st.lists(ref, max_size=2)


@st.composite
def ingest_record(
    draw: st.DrawFn, schema: EntitySchema, parent_entities: list[str], valid_rate: float = 0.9
) -> dict[str, Any]:
    """An upsert (sometimes without parents) or a delete, from the shared id and hash pools."""
    external_id = draw(st.sampled_from(IDS))
    if draw(st.integers(0, 3)) == 0:
        return {"external_id": external_id, "op": "delete"}
    record: dict[str, Any] = {
        "external_id": external_id,
        "op": "upsert",
        "data": draw(entity_data(schema, valid_rate)),
        "data_hash": draw(st.sampled_from(HASHES)),
    }
    if draw(st.integers(0, 3)):
        record["parents"] = draw(parent_refs(parent_entities)) if parent_entities else []
    return record


@st.composite
def batches(
    draw: st.DrawFn, schema: EntitySchema, parent_entities: list[str], max_size: int = 8
) -> list[dict[str, Any]]:
    """A batch's records: half the time with distinct external_ids (the bulk path's case),
    mostly with valid data (valid_rate 1), sometimes with many invalid records."""
    rate = draw(st.sampled_from([1.0, 1.0, 0.9, 0.6]))
    records = ingest_record(schema, parent_entities, rate)
    if draw(st.booleans()):
        return draw(st.lists(records, max_size=max_size))
    return draw(st.lists(records, max_size=max_size, unique_by=lambda r: r["external_id"]))
