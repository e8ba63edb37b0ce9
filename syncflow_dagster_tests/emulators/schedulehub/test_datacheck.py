"""The column-wise data check finds exactly the records check_data rejects, with its detail."""

from hypothesis import given, settings
from hypothesis import strategies as st

from syncflow_dagster.emulators.schedulehub.datacheck import check_data, find_invalid
from syncflow_dagster.emulators.schedulehub.schemas import load_schemas
from syncflow_dagster.paths import SCHEDULEHUB_SCHEMAS
from syncflow_dagster_tests.emulators.schedulehub.strategies import entity_data

SCHEMAS = load_schemas(SCHEDULEHUB_SCHEMAS)


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(), entity=st.sampled_from(sorted(SCHEMAS)), rate=st.sampled_from([0.6, 0.9, 1.0])
)
def test_find_invalid_equals_check_data(data: st.DataObject, entity: str, rate: float) -> None:
    schema = SCHEMAS[entity]
    datas = data.draw(st.lists(entity_data(schema, rate), max_size=20))
    expected = {pos: d for pos, d in enumerate(check_data(schema, x) for x in datas) if d}
    assert find_invalid(schema, datas) == expected


def test_check_data_names_the_first_problem() -> None:
    schema = SCHEMAS["items"]
    data = {"item_no": 1, "colour": "red"}
    assert check_data(schema, data) == "field 'item_no' must be a string, got integer 1"
    assert check_data(schema, {"colour": "red", "item_no": 1}) == (
        "field 'colour' is not in the schema of 'items'"
    )
    assert check_data(schema, {"item_no": "I"}) == "required field 'item_type' is missing"
