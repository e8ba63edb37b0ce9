"""Checks the models alone cannot make: values against field types, rules against column types.

A configuration can be well formed and still unable to work: ``min`` on a text
column, a ``default`` that is not of its field's type, a ``value_map`` that maps
to a number on a string field, a rowversion that is text. Each check here
returns ``(location, message)`` problems; :mod:`syncflow_dagster.config.loader`
names the file and entity in front of them, at load time where the column
types are declared, and at the start of a run (``check_against_source``) where
they come from APISmith.

Values and field conversions are tried with the mapping stage itself (its
``field_plan`` over literals and over an empty frame of the column types), so
what passes here converts the same way in the pipeline.
"""

from collections.abc import Mapping
from typing import Any

import polars as pl

from syncflow_dagster.config.models import EntityConfig, FieldConfig, RuleConfig, TargetType
from syncflow_dagster.stages.mapping import MappingError, field_plan
from syncflow_dagster.stages.normalize.oracle_types import OracleKind, OracleType, parse_oracle_type

Problem = tuple[str, str]
"""A mistake: where in the file (e.g. ``rules[QTY].min``) and what is wrong."""

_HINT: dict[TargetType, str] = {
    "string": 'text (quote it, e.g. "1.10" or "no": YAML reads those as a number or a boolean)',
    "integer": "a whole number, e.g. 0",
    "number": "a number, e.g. 0.5",
    "boolean": "true or false",
    "date": "text 'YYYY-MM-DD', e.g. '2026-01-31'",
    "datetime": "ISO 8601 text with a zone, e.g. '2026-01-31T06:00:00Z'",
}


def _yaml(value: Any) -> str:
    """A value as the YAML file spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _python_kind_fits(value: Any, target: TargetType) -> bool:
    if isinstance(value, bool):
        return target == "boolean"
    if target == "boolean":
        return False
    if target == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if target == "number":
        return isinstance(value, int | float)
    return isinstance(value, str)  # string, date, datetime: written as text


def _dry_run(field: FieldConfig) -> Any:
    """The value the mapping stage makes of a field without source columns (a constant)."""
    expr, _ = field_plan(field, pl.Schema(), "UTC", required=False)
    return pl.select(expr).item()


def value_problem(value: Any, target: TargetType, role: str, field: FieldConfig) -> str | None:
    """Why ``value`` (a constant, default or value-map value) cannot become ``target``.

    ``role`` says which it is: ``"constant"``, ``"default"`` or ``"value_map"``;
    each is tried the way the mapping stage applies it.
    """
    if value is None:
        return None
    shown = f"{'value_map value' if role == 'value_map' else role} {_yaml(value)}"
    wrong = f"{shown} is not of the field's type {target}: write {_HINT[target]}"
    if not _python_kind_fits(value, target):
        return wrong
    if role == "constant":
        probe = FieldConfig(name=field.name, type=target, constant=value)
    elif role == "default":
        probe = FieldConfig(name=field.name, type=target, constant=None, default=value)
    else:
        probe = FieldConfig(name=field.name, type=target, constant="k", value_map={"k": value})
    try:
        made = _dry_run(probe)
    except Exception as exc:  # a polars or mapping failure: the value cannot be applied
        reason = str(exc).splitlines()[0]
        if role == "default" and target in ("date", "datetime"):
            return (
                f"{shown}: a default cannot be given to a {target} field (the mapping stage "
                f"cannot apply it: {reason}); remove it, or fill the value in the ERP"
            )
        return f"{wrong} ({reason})"
    if made is None:
        return wrong
    return None


def field_value_problems(cfg: EntityConfig) -> list[Problem]:
    """Constants, defaults and value-map values that do not fit their field's type."""
    problems: list[Problem] = []
    for f in cfg.target.fields:
        where = f"target.fields[{f.name}]"
        if "constant" in f.model_fields_set and not (f.transforms or f.value_map):
            problem = value_problem(f.constant, f.type, "constant", f)
            if problem:
                problems.append((f"{where}.constant", problem))
        problem = value_problem(f.default, f.type, "default", f)
        if problem:
            problems.append((f"{where}.default", problem))
        for source, value in (f.value_map or {}).items():
            problem = value_problem(value, f.type, "value_map", f)
            if problem:
                problems.append((f"{where}.value_map[{source}]", problem))
    return problems


def _kind(dtype: pl.DataType) -> str:
    if dtype == pl.Boolean:
        return "a Y/N flag"
    if dtype == pl.String:
        return "text"
    if dtype.is_integer():
        return "a whole number"
    if dtype.is_numeric():
        return "a number"
    return "a date/time"


def _describe(column: str, oracle: OracleType, dtype: pl.DataType) -> str:
    return f"{column} is {oracle} ({_kind(dtype)})"


def parse_types(columns: Mapping[str, str], wanted: Any) -> tuple[dict[str, OracleType], list[str]]:
    """The parsed types of the ``wanted`` columns, and the messages of those that do not parse."""
    parsed: dict[str, OracleType] = {}
    bad: list[str] = []
    for name in wanted:
        if name not in columns:
            continue
        try:
            parsed[name] = parse_oracle_type(columns[name])
        except ValueError as exc:
            bad.append(f"column {name}: {exc}")
    return parsed, bad


def dtype_of(oracle: OracleType) -> pl.DataType:
    """The polars type a normalized value of the column has."""
    return oracle.polars_dtype


def _rule_problems(rule: RuleConfig, types: Mapping[str, OracleType]) -> list[Problem]:
    problems: list[Problem] = []
    where = f"rules[{rule.column}]"
    oracle = types.get(rule.column)
    if oracle is None:
        return problems
    dtype = dtype_of(oracle)
    about = _describe(rule.column, oracle, dtype)
    for check in ("min", "max"):
        if getattr(rule, check) is not None and not dtype.is_numeric():
            problems.append(
                (
                    f"{where}.{check}",
                    f"{check} compares numbers, but {about}; use allowed, regex or max_length "
                    "for text, not_before for dates",
                )
            )
    if rule.max_length is not None and dtype != pl.String:
        problems.append(
            (
                f"{where}.max_length",
                f"max_length counts the characters of text, but {about}; use min/max for numbers",
            )
        )
    if rule.allowed is not None:
        problem = _allowed_problem(rule.allowed, dtype, about)
        if problem:
            problems.append((f"{where}.allowed", problem))
    if rule.not_before is not None:
        for name in (rule.column, rule.not_before):
            other = types.get(name)
            if other is not None and not isinstance(dtype_of(other), pl.Datetime):
                problems.append(
                    (
                        f"{where}.not_before",
                        "not_before compares two dates, but "
                        f"{_describe(name, other, dtype_of(other))}; name DATE or TIMESTAMP "
                        "columns",
                    )
                )
    return problems


def _allowed_problem(allowed: tuple[Any, ...], dtype: pl.DataType, about: str) -> str | None:
    if isinstance(dtype, pl.Datetime):
        return f"allowed lists values, but {about}; use not_before for dates"
    if dtype == pl.String:
        fits, want = (lambda v: isinstance(v, str)), "text (quote each value, e.g. ['1', '2'])"
    elif dtype == pl.Boolean:
        fits, want = (lambda v: isinstance(v, bool)), "true / false"
    elif dtype.is_integer():
        fits, want = (
            (
                lambda v: (
                    not isinstance(v, bool)
                    and (isinstance(v, int) or (isinstance(v, float) and v.is_integer()))
                )
            ),
            "whole numbers, unquoted",
        )
    else:
        fits, want = (
            (lambda v: not isinstance(v, bool) and isinstance(v, int | float)),
            "numbers, unquoted",
        )
    wrong = [v for v in allowed if not fits(v)]
    if wrong:
        listing = ", ".join(_yaml(v) for v in wrong)
        return f"allowed values {listing} can never match: {about}, so list {want}"
    return None


def _field_problems(
    f: FieldConfig, types: Mapping[str, OracleType], schema: pl.Schema
) -> list[Problem]:
    """A field reading columns whose types the mapping stage cannot turn into its type."""
    where = f"target.fields[{f.name}]"
    if not all(c in types for c in f.source_columns):
        return []
    if f.from_ is not None and f.transforms and schema[f.from_] != pl.String:
        oracle = types[f.from_]
        return [
            (
                f"{where}.transforms",
                f"transforms {list(f.transforms)} change text, but "
                f"{_describe(f.from_, oracle, schema[f.from_])}; remove them",
            )
        ]
    try:  # defaults, constants and value-map values are checked on their own
        expr, checks = field_plan(f.model_copy(update={"default": None}), schema, "UTC", False)
        failed = [c.failed.alias(f"_c{i}") for i, c in enumerate(checks)]
        pl.DataFrame(schema=schema).select(expr, *failed)
    except MappingError as exc:
        detail = str(exc).removeprefix(f"field {f.name}: ")
        if f.from_ is not None:
            oracle = types[f.from_]
            detail = (
                f"{_describe(f.from_, oracle, schema[f.from_])}, which cannot become "
                f"{f.type} ({detail})"
            )
        return [(where, detail)]
    except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError) as exc:
        return [(where, f"cannot be mapped from the source types: {str(exc).splitlines()[0]}")]
    return []


def source_type_problems(cfg: EntityConfig, columns: Mapping[str, str]) -> list[Problem]:
    """Rules, fields and the rowversion against the source columns' Oracle types.

    ``columns`` maps column names to Oracle type text (``source.columns``, or
    APISmith's description). Columns it does not name are not checked here
    (:meth:`EntityConfig.check_columns` reports them).
    """
    types, bad = parse_types(columns, cfg.read_columns)
    problems: list[Problem] = [("source.columns", message) for message in bad]
    rowversion = cfg.source.rowversion
    if rowversion is not None and rowversion in types:
        oracle = types[rowversion]
        integral = oracle.kind is OracleKind.INTEGER or (
            oracle.kind is OracleKind.NUMBER and (oracle.scale is None or oracle.scale <= 0)
        )
        if not integral:
            problems.append(
                (
                    "source.rowversion",
                    f"the rowversion must be a whole NUMBER (e.g. ORA_ROWSCN NUMBER(19,0)), but "
                    f"{_describe(rowversion, oracle, dtype_of(oracle))}; name another column or "
                    "remove rowversion (every run is then a full compare)",
                )
            )
    for rule in cfg.rules:
        problems.extend(_rule_problems(rule, types))
    schema = pl.Schema({name: dtype_of(t) for name, t in types.items()})
    for f in cfg.target.fields:
        problems.extend(_field_problems(f, types, schema))
    return problems


def key_type_problem(
    child_column: str,
    child_type: str,
    parent: str,
    parent_column: str,
    parent_type: str,
) -> str | None:
    """Why a child's parent-key column cannot carry the parent's key (its type differs)."""
    try:
        mine, theirs = parse_oracle_type(child_type), parse_oracle_type(parent_type)
    except ValueError:
        return None  # reported where the type is declared
    if dtype_of(mine) == dtype_of(theirs):
        return None
    return (
        f"{_describe(child_column, mine, dtype_of(mine))} but the key column {parent_column} "
        f"of '{parent}' is {theirs} ({_kind(dtype_of(theirs))}): the parent's BK_HASH could "
        "never match, so every child would wait for its parent forever; give both columns "
        "the same kind of type"
    )
