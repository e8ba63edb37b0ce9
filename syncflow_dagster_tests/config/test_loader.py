from pathlib import Path

import pytest
import yaml

from syncflow_dagster.config.loader import ConfigError, load_catalog
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
