from pathlib import Path

import pytest
import yaml

from syncflow_dagster.config.loader import ConfigError, check_against_source, load_catalog
from syncflow_dagster.emulators.apismith.schema import ENTITIES as APISMITH_SCHEMAS
from syncflow_dagster.paths import ENTITIES_DIR

WORK_ORDERS = yaml.safe_load((ENTITIES_DIR / "work_orders.yaml").read_text())
ITEMS = yaml.safe_load((ENTITIES_DIR / "items.yaml").read_text())


def _write(tmp_path: Path, **entities: dict) -> Path:
    for name, body in entities.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(body))
    return tmp_path


def test_shipped_configuration_loads_parent_first() -> None:
    catalog = load_catalog(ENTITIES_DIR)
    order = catalog.parent_first()
    assert set(order) == {"items", "work_centers", "work_orders", "work_order_operations"}
    assert order.index("items") < order.index("work_orders") < order.index("work_order_operations")
    assert order.index("work_centers") < order.index("work_order_operations")
    assert catalog.children_of("work_orders") == ["work_order_operations"]


def test_bad_field_type_names_file_entity_and_field(tmp_path: Path) -> None:
    bad = yaml.safe_load(yaml.safe_dump(WORK_ORDERS))
    bad["target"]["fields"][2]["type"] = "decimal"
    _write(tmp_path, items=ITEMS, work_orders=bad)
    with pytest.raises(ConfigError) as err:
        load_catalog(tmp_path)
    message = str(err.value)
    assert "work_orders.yaml" in message
    assert "entity 'work_orders'" in message
    assert "target.fields[quantity].type" in message


def test_field_reading_unknown_column_is_named(tmp_path: Path) -> None:
    bad = yaml.safe_load(yaml.safe_dump(WORK_ORDERS))
    bad["target"]["fields"][1]["from"] = "ITEM_NUMBER"
    _write(tmp_path, items=ITEMS, work_orders=bad)
    with pytest.raises(
        ConfigError, match=r"target field item_no: source column ITEM_NUMBER does not exist"
    ):
        load_catalog(tmp_path)


def test_unknown_oracle_type_is_named(tmp_path: Path) -> None:
    bad = yaml.safe_load(yaml.safe_dump(WORK_ORDERS))
    bad["source"]["columns"]["ORDER_QTY"] = "MONEY(12)"
    _write(tmp_path, items=ITEMS, work_orders=bad)
    with pytest.raises(ConfigError, match=r"source.columns.*ORDER_QTY"):
        load_catalog(tmp_path)


def test_unknown_parent_and_key_width(tmp_path: Path) -> None:
    _write(tmp_path, work_orders=WORK_ORDERS)
    with pytest.raises(
        ConfigError, match=r"field 'parents\[items\]': parent entity 'items' is not configured"
    ):
        load_catalog(tmp_path)
    bad = yaml.safe_load(yaml.safe_dump(WORK_ORDERS))
    bad["parents"][0]["columns"] = ["ITEM_NO", "WO_NO"]
    _write(tmp_path, items=ITEMS, work_orders=bad)
    with pytest.raises(ConfigError, match=r"2 column\(s\) given but the key of 'items' has 1"):
        load_catalog(tmp_path)


def test_parent_cycle_is_refused(tmp_path: Path) -> None:
    items = yaml.safe_load(yaml.safe_dump(ITEMS))
    items["parents"] = [{"entity": "work_orders", "columns": ["ITEM_NO"]}]
    _write(tmp_path, items=items, work_orders=WORK_ORDERS)
    with pytest.raises(ConfigError, match="cycle"):
        load_catalog(tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "Work-Orders"}, "name"),
        ({"extra_key": 1}, "extra_key"),
        ({"rules": [{"column": "ORDER_QTY"}]}, "names no check"),
        ({"rules": [{"column": "WO_NO", "regex": "("}]}, "regex does not compile"),
        ({"sync": {"schedule": {"cron": "* *"}}}, "five fields"),
        (
            {"source": {"entity": "work_orders", "key": ["WO_NO"], "timezone": "Mars/Base"}},
            "unknown time zone",
        ),
    ],
)
def test_model_mistakes_are_reported(tmp_path: Path, change: dict, message: str) -> None:
    bad = {**yaml.safe_load(yaml.safe_dump(WORK_ORDERS)), **change}
    _write(tmp_path, items=ITEMS, work_orders=bad)
    with pytest.raises(ConfigError, match=message):
        load_catalog(tmp_path)


def test_field_needs_exactly_one_source(tmp_path: Path) -> None:
    bad = yaml.safe_load(yaml.safe_dump(WORK_ORDERS))
    bad["target"]["fields"][0] = {
        "name": "order_no",
        "type": "string",
        "from": "WO_NO",
        "constant": "x",
    }
    _write(tmp_path, items=ITEMS, work_orders=bad)
    with pytest.raises(
        ConfigError,
        match=r"field 'target.fields\[order_no\]': a field takes its value from exactly one of",
    ):
        load_catalog(tmp_path)


def test_reserved_field_name(tmp_path: Path) -> None:
    bad = yaml.safe_load(yaml.safe_dump(WORK_ORDERS))
    bad["target"]["fields"][0]["name"] = "bk_hash"
    _write(tmp_path, items=ITEMS, work_orders=bad)
    with pytest.raises(ConfigError, match="reserved"):
        load_catalog(tmp_path)


def test_same_entity_twice(tmp_path: Path) -> None:
    _write(tmp_path, items=ITEMS, items_copy=ITEMS)
    with pytest.raises(ConfigError, match="also defined in"):
        load_catalog(tmp_path)


def test_invalid_yaml(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML"):
        load_catalog(tmp_path)


def _apismith_types(entity: str) -> dict[str, str]:
    return {c.name: c.type for c in APISMITH_SCHEMAS[entity].columns}


def test_shipped_configuration_fits_the_types_apismith_describes() -> None:
    catalog = load_catalog(ENTITIES_DIR)
    for cfg in catalog:
        assert cfg._file == ENTITIES_DIR / f"{cfg.name}.yaml"
        check_against_source(cfg, _apismith_types(cfg.source.entity), catalog=catalog)


def test_check_against_source_names_file_entity_and_field() -> None:
    catalog = load_catalog(ENTITIES_DIR)
    items = catalog["items"]
    types = _apismith_types("items")
    with pytest.raises(ConfigError) as err:
        check_against_source(items, {**types, "STD_COST": "VARCHAR2(12)"})
    assert str(err.value).startswith(
        f"{ENTITIES_DIR / 'items.yaml'}: entity 'items': field 'rules[STD_COST].min': "
        "min compares numbers, but STD_COST is VARCHAR2(12) (text)"
    )
    assert "as APISmith describes them" in str(err.value)
    missing = {k: v for k, v in types.items() if k != "UOM"}
    with pytest.raises(
        ConfigError, match=r"field 'source.columns': .*UOM does not exist at APISmith"
    ):
        check_against_source(items, missing)


def test_check_against_source_checks_key_types_across_parents_and_children(
    tmp_path: Path,
) -> None:
    catalog = load_catalog(ENTITIES_DIR)
    # items declares no columns; work_orders declares ITEM_NO VARCHAR2(20).
    numeric_key = {**_apismith_types("items"), "ITEM_NO": "NUMBER(10,0)"}
    check_against_source(catalog["items"], numeric_key)  # on its own, nothing to compare
    with pytest.raises(ConfigError) as err:
        check_against_source(catalog["items"], numeric_key, catalog=catalog)
    assert "work_orders.yaml: entity 'work_orders': field 'parents[items].columns'" in str(
        err.value
    )
    assert (
        "ITEM_NO is VARCHAR2(20) (text) but the key column ITEM_NO of 'items' is NUMBER(10,0)"
        in (str(err.value))
    )
    # The other way round: a child without columns, its parent declared.
    ops = yaml.safe_load((ENTITIES_DIR / "work_order_operations.yaml").read_text())
    del ops["source"]["columns"]
    work_centers = yaml.safe_load((ENTITIES_DIR / "work_centers.yaml").read_text())
    _write(
        tmp_path,
        items=ITEMS,
        work_orders=WORK_ORDERS,
        work_centers=work_centers,
        work_order_operations=ops,
    )
    mine = load_catalog(tmp_path)
    types = {**_apismith_types("work_order_operations"), "WC_CODE": "NUMBER(5,0)"}
    with pytest.raises(ConfigError, match=r"parents\[work_centers\].columns': WC_CODE is NUMBER"):
        check_against_source(mine["work_order_operations"], types, catalog=mine)


def test_parent_key_types_are_checked_at_load_when_both_are_declared(tmp_path: Path) -> None:
    items = {
        **ITEMS,
        "source": {
            **ITEMS["source"],
            "columns": {**_apismith_types("items"), "ITEM_NO": "NUMBER(10,0)"},
        },
    }
    _write(tmp_path, items=items, work_orders=WORK_ORDERS)
    with pytest.raises(
        ConfigError,
        match=r"work_orders.yaml: entity 'work_orders': field 'parents\[items\].columns': "
        r"ITEM_NO is VARCHAR2\(20\) \(text\) but the key column ITEM_NO of 'items' is NUMBER",
    ):
        load_catalog(tmp_path)


def test_two_entities_cannot_feed_one_hub_entity(tmp_path: Path) -> None:
    copy = {**WORK_ORDERS, "name": "work_orders_copy"}
    _write(tmp_path, items=ITEMS, work_orders=WORK_ORDERS, work_orders_copy=copy)
    with pytest.raises(
        ConfigError,
        match=r"work_orders_copy.yaml: entity 'work_orders_copy': field 'target.entity': "
        r"ScheduleHub entity 'work_orders' is already fed by entity 'work_orders'",
    ):
        load_catalog(tmp_path)


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    bad = yaml.safe_load(yaml.safe_dump(WORK_ORDERS))
    bad["rules"] += [{"column": "STATUS", "min": 1}, {"column": "ORDER_QTY", "max_length": 3}]
    bad["target"]["fields"][5]["default"] = "high"
    _write(tmp_path, items=ITEMS, work_orders=bad)
    with pytest.raises(ConfigError) as err:
        load_catalog(tmp_path)
    lines = str(err.value).splitlines()
    assert len(lines) == 3
    assert all(
        line.startswith(f"{tmp_path / 'work_orders.yaml'}: entity 'work_orders': field '")
        for line in lines
    )
