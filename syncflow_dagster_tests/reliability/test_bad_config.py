"""Reliability corpus: entity YAML that is well formed but cannot work.

Each case changes one shipped entity file (or, for an entity whose column types
come from APISmith, the types APISmith describes) and expects a clear
``ConfigError`` naming the file, the entity and the field, with what to fix:
at load time where the types are declared, from ``check_against_source`` at
the start of a run where they are not. None may crash with a raw polars error
mid-run or pass and dead-letter every record.
"""

import copy
import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from syncflow_dagster.config.loader import ConfigError, check_against_source, load_catalog
from syncflow_dagster.emulators.apismith.schema import ENTITIES as APISMITH_SCHEMAS
from syncflow_dagster.errors import error_kind
from syncflow_dagster.paths import ENTITIES_DIR

SHIPPED = {p.stem: yaml.safe_load(p.read_text()) for p in ENTITIES_DIR.glob("*.yaml")}


@dataclass(frozen=True)
class Case:
    """One bad configuration and the error it must give.

    ``input``: ``file`` (the entity file changed), ``changes`` (operations:
    ``("set", path, value)``, ``("add", path, item)``, ``("del", path)``; a
    path's ``[x]`` picks the list item whose name / column / entity is x),
    optionally ``apismith`` (column types APISmith describes, over its real
    ones: the case is checked at run time) and ``blamed`` (the entity the
    error names, when not ``file``).
    """

    name: str
    input: dict[str, Any] = field(hash=False)
    outcome_kind: str
    expected: str


def _case(name: str, expected: str, file: str = "work_orders", **input_: Any) -> Case:
    return Case(name, {"file": file, **input_}, "clear_error", expected)


def _rule(**rule: Any) -> tuple[str, str, dict[str, Any]]:
    return ("add", "rules", rule)


CASES: list[Case] = [
    # Regexes the Rust engine polars runs cannot compile (Python's `re` can).
    _case(
        "regex_look_ahead",
        "field 'rules[WO_NO].regex': regex does not compile in the Rust regex engine polars "
        "runs: look-around",
        changes=[_rule(column="WO_NO", regex="^(?=WO-)")],
    ),
    _case(
        "regex_look_behind",
        "rewrite it without look-around or back-references",
        changes=[_rule(column="WO_NO", regex="(?<!X)WO-")],
    ),
    _case(
        "regex_back_reference",
        "field 'rules[WO_NO].regex': regex does not compile in the Rust regex engine polars "
        "runs: backreferences are not supported",
        changes=[_rule(column="WO_NO", regex=r"^(.)\1")],
    ),
    # Rules whose check does not fit the column's type.
    _case(
        "not_before_on_text",
        "field 'rules[STATUS].not_before': not_before compares two dates, but STATUS is "
        "VARCHAR2(12) (text)",
        changes=[_rule(column="STATUS", not_before="START_DATE")],
    ),
    _case(
        "not_before_against_text",
        "field 'rules[DUE_DATE].not_before': not_before compares two dates, but NOTES is "
        "VARCHAR2(400) (text)",
        changes=[_rule(column="DUE_DATE", not_before="NOTES")],
    ),
    _case(
        "min_on_text",
        "field 'rules[STATUS].min': min compares numbers, but STATUS is VARCHAR2(12) (text)",
        changes=[_rule(column="STATUS", min=0)],
    ),
    _case(
        "max_on_date",
        "field 'rules[DUE_DATE].max': max compares numbers, but DUE_DATE is DATE (a date/time)",
        changes=[_rule(column="DUE_DATE", max=5)],
    ),
    _case(
        "allowed_numbers_on_text",
        "field 'rules[STATUS].allowed': allowed values 1, 2 can never match: STATUS is "
        "VARCHAR2(12) (text), so list text",
        changes=[_rule(column="STATUS", allowed=[1, 2])],
    ),
    _case(
        "allowed_text_on_number",
        "field 'rules[PRIORITY].allowed': allowed values '1', '2' can never match",
        changes=[_rule(column="PRIORITY", allowed=["1", "2"])],
    ),
    _case(
        "allowed_fraction_on_whole_number",
        "allowed values 1.5 can never match: PRIORITY is NUMBER(3,0) (a whole number)",
        changes=[_rule(column="PRIORITY", allowed=[1, 1.5])],
    ),
    _case(
        "allowed_on_date",
        "field 'rules[DUE_DATE].allowed': allowed lists values, but DUE_DATE is DATE",
        changes=[_rule(column="DUE_DATE", allowed=["2026-01-01"])],
    ),
    _case(
        "max_length_on_number",
        "field 'rules[ORDER_QTY].max_length': max_length counts the characters of text, but "
        "ORDER_QTY is NUMBER(12,3) (a number)",
        changes=[_rule(column="ORDER_QTY", max_length=5)],
    ),
    # Defaults, constants and value-map values of the wrong type for their field.
    _case(
        "default_text_on_integer",
        "field 'target.fields[priority].default': default 'high' is not of the field's type "
        "integer: write a whole number",
        changes=[("set", "target.fields[priority].default", "high")],
    ),
    _case(
        "default_boolean_on_integer",
        "field 'target.fields[priority].default': default true is not of the field's type integer",
        changes=[("set", "target.fields[priority].default", True)],
    ),
    _case(
        "default_fraction_on_integer",
        "default 1.5 is not of the field's type integer",
        changes=[("set", "target.fields[priority].default", 1.5)],
    ),
    _case(
        "default_number_on_string",
        "field 'target.fields[notes].default': default 1.1 is not of the field's type string: "
        "write text (quote it",
        changes=[("set", "target.fields[notes].default", 1.10)],
    ),
    _case(
        "default_on_date",
        "field 'target.fields[due_date].default': default '2026-01-01': a default cannot be "
        "given to a date field",
        changes=[("set", "target.fields[due_date].default", "2026-01-01")],
    ),
    _case(
        "constant_text_on_number",
        "field 'target.fields[weight].constant': constant 'heavy' is not of the field's type "
        "number",
        changes=[
            ("add", "target.fields", {"name": "weight", "constant": "heavy", "type": "number"})
        ],
    ),
    _case(
        "constant_not_a_date",
        "constant '31.01.2026' is not of the field's type date: write text 'YYYY-MM-DD'",
        changes=[
            ("add", "target.fields", {"name": "frozen", "constant": "31.01.2026", "type": "date"})
        ],
    ),
    _case(
        "constant_yaml_no_on_string",
        "field 'target.fields[source].constant': constant false is not of the field's type string",
        changes=[("add", "target.fields", {"name": "source", "constant": False, "type": "string"})],
    ),
    _case(
        "constant_unquoted_date",
        "field 'target.fields[frozen].constant': should be text, a number or true/false (YAML "
        "read 2026-01-31 as a date or time: quote it)",
        changes=[
            (
                "add",
                "target.fields",
                {"name": "frozen", "constant": datetime.date(2026, 1, 31), "type": "date"},
            )
        ],
    ),
    _case(
        "value_map_to_int_on_string",
        "field 'target.fields[status].value_map[FIRM]': value_map value 1 is not of the field's "
        "type string",
        changes=[("set", "target.fields[status].value_map", {"FIRM": 1})],
    ),
    _case(
        "value_map_to_text_on_integer",
        "field 'target.fields[priority].value_map[1]': value_map value 'HIGH' is not of the "
        "field's type integer",
        changes=[("set", "target.fields[priority].value_map", {"1": "HIGH"})],
    ),
    # Fields reading columns whose type cannot become the field's type.
    _case(
        "transforms_on_number",
        "field 'target.fields[quantity].transforms': transforms ['upper'] change text, but "
        "ORDER_QTY is NUMBER(12,3) (a number)",
        changes=[("set", "target.fields[quantity].transforms", ["upper"])],
    ),
    _case(
        "date_into_integer",
        "field 'target.fields[priority]': START_DATE is DATE (a date/time), which cannot become "
        "integer",
        changes=[("set", "target.fields[priority].from", "START_DATE")],
    ),
    # The rowversion, parents and targets.
    _case(
        "rowversion_on_text",
        "field 'source.rowversion': the rowversion must be a whole NUMBER (e.g. ORA_ROWSCN "
        "NUMBER(19,0)), but NOTES is VARCHAR2(400) (text)",
        changes=[("set", "source.rowversion", "NOTES")],
    ),
    _case(
        "rowversion_with_a_fraction",
        "the rowversion must be a whole NUMBER (e.g. ORA_ROWSCN NUMBER(19,0)), but ORDER_QTY is "
        "NUMBER(12,3)",
        changes=[("set", "source.rowversion", "ORDER_QTY")],
    ),
    _case(
        "parent_key_number_against_varchar2",
        "field 'parents[work_orders].columns': WO_NO is NUMBER(10,0) (a whole number) but the "
        "key column WO_NO of 'work_orders' is VARCHAR2(20) (text)",
        file="work_order_operations",
        changes=[("set", "source.columns.WO_NO", "NUMBER(10,0)")],
    ),
    _case(
        "two_entities_into_one_hub_entity",
        "field 'target.entity': ScheduleHub entity 'work_orders' is already fed by entity "
        "'work_orders'",
        file="work_centers",
        changes=[("set", "target.entity", "work_orders")],
    ),
    # Entities without source.columns: checked against APISmith's types at the start of a run.
    _case(
        "run_time_min_on_text",
        "field 'rules[STD_COST].min': min compares numbers, but STD_COST is VARCHAR2(12) (text)",
        file="items",
        changes=[],
        apismith={"STD_COST": "VARCHAR2(12)"},
    ),
    _case(
        "run_time_rowversion_on_text",
        "field 'source.rowversion': the rowversion must be a whole NUMBER",
        file="items",
        changes=[],
        apismith={"ORA_ROWSCN": "VARCHAR2(30)"},
    ),
    _case(
        "run_time_allowed_on_number",
        "field 'rules[ITEM_TYPE].allowed': allowed values 'MAKE', 'BUY', 'PHANTOM' can never "
        "match: ITEM_TYPE is NUMBER(2,0)",
        file="items",
        changes=[],
        apismith={"ITEM_TYPE": "NUMBER(2,0)"},
    ),
    _case(
        "run_time_missing_column",
        "field 'source.columns': target field uom: source column UOM does not exist at APISmith",
        file="items",
        changes=[],
        apismith={"UOM": None},
    ),
    _case(
        "run_time_unknown_oracle_type",
        "field 'source.columns': column DESCRIPTION: unknown Oracle type 'CLOB'",
        file="items",
        changes=[],
        apismith={"DESCRIPTION": "CLOB"},
    ),
    _case(
        "run_time_parent_key_number_against_varchar2",
        "field 'parents[items].columns': ITEM_NO is VARCHAR2(20) (text) but the key column "
        "ITEM_NO of 'items' is NUMBER(10,0) (a whole number)",
        file="items",
        blamed="work_orders",
        changes=[],
        apismith={"ITEM_NO": "NUMBER(10,0)"},
    ),
]

_STEP = re.compile(r"([^.\[]+)|\[([^\]]+)\]")


def _walk(doc: Any, path: str) -> tuple[Any, Any]:
    """The container of the last step of ``path`` and that step's key or index."""
    steps: list[Any] = []
    for name, label in _STEP.findall(path):
        steps.append(name or ("label", label))
    node = doc
    for i, step in enumerate(steps):
        if isinstance(step, tuple):
            key: Any = next(
                n
                for n, item in enumerate(node)
                if step[1] in (item.get("name"), item.get("column"), item.get("entity"))
            )
        else:
            key = step
        if i == len(steps) - 1:
            return node, key
        node = node[key]
    raise AssertionError(f"empty path {path!r}")


def _apply(doc: dict[str, Any], changes: list[tuple[Any, ...]]) -> None:
    for op, path, *value in changes:
        node, key = _walk(doc, path)
        if op == "set":
            node[key] = value[0]
        elif op == "add":
            node.setdefault(key, []).append(value[0])
        else:
            del node[key]


def test_the_corpus_is_whole() -> None:
    assert len({c.name for c in CASES}) == len(CASES) >= 30
    assert {c.outcome_kind for c in CASES} <= {"clear_error", "dead_letter", "normalization"}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_configuration_fails_naming_file_entity_and_field(case: Case, tmp_path: Path) -> None:
    entities = copy.deepcopy(SHIPPED)
    _apply(entities[case.input["file"]], case.input["changes"])
    for name, body in entities.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    with pytest.raises(ConfigError) as err:
        catalog = load_catalog(tmp_path)
        if "apismith" in case.input:
            cfg = catalog[case.input["file"]]
            schema = APISMITH_SCHEMAS[cfg.source.entity]
            types = {c.name: c.type for c in schema.columns}
            for column, oracle_type in case.input["apismith"].items():
                if oracle_type is None:
                    del types[column]
                else:
                    types[column] = oracle_type
            check_against_source(cfg, types, catalog=catalog)
    message = str(err.value)
    blamed = case.input.get("blamed", case.input["file"])
    assert f"{tmp_path / blamed}.yaml: entity '{blamed}': field '" in message
    assert case.expected in message
    assert error_kind(err.value) == "configuration"
    if "apismith" not in case.input:
        return
    # A run-time case must have passed the load: its mistake shows only against APISmith.
    load_catalog(tmp_path)
