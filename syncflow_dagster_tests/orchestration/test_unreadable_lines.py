"""One malformed ERP line is a dead letter, not a blocked entity — and never a delete."""

import polars as pl

from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster_tests.orchestration.conftest import MakeHarness

SPEC = DatasetSpec(seed=17, work_orders=120, operations_per_order=0, bad_fraction=0.0)


def test_bad_lines_are_dead_lettered_and_their_records_are_not_deleted(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(SPEC)
    h.sync_parent_first()
    before = h.hub_count("work_orders")
    orders = h.api.dataset.ground_truth("work_orders").get_column("WO_NO").head(3).to_list()
    # The ERP now renders these rows as lines no JSON reader takes; their keys are
    # readable in the first, not in the truncated third one.
    h.api.dataset.serve_raw_lines(
        "work_orders",
        {
            (orders[0],): f'{{"WO_NO": "{orders[0]}", "ORDER_QTY": 1e400, "ORA_ROWSCN": 7}}',
            (orders[1],): b'{"WO_NO": "' + orders[1].encode() + b'", "NOTES": "\xff\xfe"}',
            (orders[2],): '{"WO_NO": "WO-TRUNC',
        },
    )
    for mode in ("full", "incremental"):
        assert h.run_entity("work_orders", mode).success
        batch = h.last_batch("work_orders")
        assert batch["status"] == "succeeded", batch["error"]
        assert batch["deleted"] == 0 and batch["delete_candidates"] == 0
        assert h.hub_count("work_orders") == before  # nothing taken for deleted
    full = h.store.recent_batches("work_orders", limit=2)[1]
    assert full["fetch_failed"] == 3 and full["dead_lettered"] == 3
    letters = h.store.list_failed("work_orders")
    fetch = letters.filter(pl.col("stage") == "fetch")
    assert fetch.height == 3
    assert set(fetch.get_column("code")) >= {"non_finite_number", "invalid_utf8", "truncated"}
    assert fetch.get_column("raw").str.contains("WO-TRUNC").any()
    assert fetch.get_column("bk_hash").null_count() == 1  # only the truncated line's key is lost

    # The ERP renders them well again: the next run delivers them and closes the letters.
    h.api.dataset.clear_raw_lines("work_orders")
    h.api.dataset.update_keys("work_orders", [[o] for o in orders])
    assert h.run_entity("work_orders").success
    check = h.reconcile(["items", "work_orders"])
    assert check.ok, check.problems
    still_open = h.store.list_failed("work_orders").filter(pl.col("stage") == "fetch")
    # The two letters with a key closed as recovered; the keyless one waits for a person.
    assert still_open.height == 1 and still_open.item(0, "bk_hash") is None
