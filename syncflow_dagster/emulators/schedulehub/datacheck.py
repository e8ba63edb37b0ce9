"""Does a record's ``data`` match its entity schema? One record, or a whole batch column-wise.

:func:`check_data` is the reference rule and writes the detail of an
``invalid_record`` rejection. It walks the data's fields in order (a field not
in the schema, or a value of the wrong type, is the first problem found), then
the schema's required fields in schema order (a missing one).

:func:`find_invalid` gives the same answer for many records at once: it groups
the records by their field names (normally one group), checks each field's
column in a few C-level passes, and runs :func:`check_data` only on the records
it found suspect.
"""

from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

from syncflow_dagster.emulators.schedulehub.schemas import EntitySchema
from syncflow_dagster.emulators.schedulehub.values import TYPE_WORDS, column_ok, describe, value_ok

Data = dict[str, Any]


def check_data(schema: EntitySchema, data: Data) -> str | None:
    """The reason ``data`` does not fit the schema (naming the field), or None."""
    fields = schema.field_map
    for name, value in data.items():
        spec = fields.get(name)
        if spec is None:
            return f"field {name!r} is not in the schema of {schema.name!r}"
        if value is None:
            if spec.required:
                return f"field {name!r} is required and must not be null"
            continue
        if not value_ok(spec.type, value):
            return f"field {name!r} must be {TYPE_WORDS[spec.type]}, got {describe(value)}"
    for name in schema.required:
        if name not in data:
            return f"required field {name!r} is missing"
    return None


Group = tuple[tuple[str, ...], list[int], list[tuple[Any, ...]]]


def _values(names: tuple[str, ...], rows: Sequence[Data]) -> list[tuple[Any, ...]]:
    """Each row's values of ``names``, as a tuple (KeyError when a name is absent)."""
    if len(names) >= 2:
        return list(map(itemgetter(*names), rows))
    if len(names) == 1:
        return [(row[names[0]],) for row in rows]
    return [() for _ in rows]


def canonical_names(schema: EntitySchema, names: Iterable[str]) -> tuple[str, ...]:
    """Field names in schema order (names not in the schema last, as given), one shared tuple."""
    given = list(names)
    present = set(given)
    ordered = tuple(f.name for f in schema.fields if f.name in present)
    if len(ordered) < len(given):
        ordered += tuple(n for n in given if n not in schema.field_map)
    return shared_names(ordered)


_NAMES: dict[tuple[str, ...], tuple[str, ...]] = {}


def shared_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """One tuple object for each distinct tuple of field names (rows share it)."""
    return _NAMES.setdefault(names, names)


def groups_of(schema: EntitySchema, datas: Sequence[Data]) -> list[Group]:
    """The records grouped by their set of field names: names, positions, value tuples.

    Names are in schema order (:func:`canonical_names`), and so are the values.
    """
    if not datas:
        return []
    first = canonical_names(schema, datas[0])
    if set(map(len, datas)) == {len(first)}:
        try:
            # Same length and every name of the first record present: the same names.
            return [(first, list(range(len(datas))), _values(first, datas))]
        except KeyError:
            pass
    groups: dict[frozenset[str], list[int]] = {}
    for pos, data in enumerate(datas):
        groups.setdefault(frozenset(data), []).append(pos)
    return [
        (names, positions, _values(names, [datas[p] for p in positions]))
        for names, positions in (
            (canonical_names(schema, key), positions) for key, positions in groups.items()
        )
    ]


def find_invalid(
    schema: EntitySchema, datas: Sequence[Data], groups: list[Group] | None = None
) -> dict[int, str]:
    """The positions (in ``datas``) of records that do not fit, with check_data's detail.

    ``groups`` is :func:`groups_of` the same datas, when the caller has it already.
    """
    if not datas:
        return {}
    fields = schema.field_map
    suspects: set[int] = set()
    for names, positions, values in groups if groups is not None else groups_of(schema, datas):
        if not set(names) <= fields.keys() or not set(schema.required) <= set(names):
            suspects.update(positions)
            continue
        columns = list(zip(*values, strict=True)) if names else []
        for name, column in zip(names, columns, strict=True):
            spec = fields[name]
            if column_ok(spec.type, column, nullable=not spec.required):
                continue
            for pos, value in zip(positions, column, strict=True):
                if value is None:
                    if spec.required:
                        suspects.add(pos)
                elif not value_ok(spec.type, value):
                    suspects.add(pos)
    found: dict[int, str] = {}
    for pos in sorted(suspects):
        detail = check_data(schema, datas[pos])
        assert detail is not None, "column check and check_data disagree"
        found[pos] = detail
    return found
