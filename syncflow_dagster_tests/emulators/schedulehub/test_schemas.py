"""The entity schema file: read and checked, with file, entity and field named on errors."""

from pathlib import Path

import pytest

from syncflow_dagster.emulators.schedulehub.schemas import SchemaConfigError, load_schemas
from syncflow_dagster.paths import SCHEDULEHUB_SCHEMAS


def test_demo_schemas() -> None:
    schemas = load_schemas(SCHEDULEHUB_SCHEMAS)
    assert list(schemas) == ["items", "work_centers", "work_orders", "operations"]
    assert schemas["work_orders"].required == ("order_no", "item_no", "quantity", "status")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("entities: 3", "'entities' list"),
        ("entities: [{name: a, fields: [{name: x, type: text}]}]", "entity 'a', field 'x'"),
        ("entities: [{name: a, fields: [{name: x, type: string, required: 1}]}]", "'required'"),
        ("entities: [{name: a, parents: [b]}]", "parent 'b' is not an entity"),
        ("entities: [{name: a}, {name: a}]", "defined twice"),
        (
            "entities: [{name: a, fields: [{name: x, type: date}, {name: x, type: date}]}]",
            "field 'x'",
        ),
        ("entities: [{fields: []}]", "non-empty 'name'"),
    ],
)
def test_bad_files_name_the_place(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SchemaConfigError) as caught:
        load_schemas(path)
    assert str(path) in str(caught.value) and words in str(caught.value)
