import polars as pl
import pytest

from syncflow_dagster.edges.apismith import ApiSmithClient
from syncflow_dagster.edges.http import AuthError, NotFoundError
from syncflow_dagster.edges.retry import RetriesExhaustedError, RetryPolicy
from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.testing.apismith import running_apismith

SPEC = DatasetSpec(seed=7, work_orders=300, operations_per_order=0)


def _fast_retry(max_retries: int = 5, sleeps: list[float] | None = None) -> RetryPolicy:
    record = sleeps if sleeps is not None else []
    return RetryPolicy(max_retries=max_retries, base_delay=0.001, max_delay=5, sleep=record.append)


def test_fetch_pages_everything_in_order_as_text() -> None:
    with running_apismith(SPEC) as api, ApiSmithClient(api.url, api.token, page_size=40) as client:
        described = client.entity("work_orders")
        assert described.key == ("WO_NO",) and described.rowversion == "ORA_ROWSCN"
        result = client.fetch("work_orders", list(described.columns))
        frame = result.frame
        assert (
            frame.height
            == client.count("work_orders")[0]
            == api.dataset.ground_truth("work_orders").height
        )
        assert result.pages >= frame.height // 40 and not result.truncated
        assert all(dtype == pl.String for dtype in frame.schema.values())
        scn = frame.get_column("ORA_ROWSCN").cast(pl.Int64)
        assert scn.is_sorted()


def test_since_rowversion_and_row_limit() -> None:
    with running_apismith(SPEC) as api, ApiSmithClient(api.url, api.token, page_size=50) as client:
        top = api.dataset.max_rowversion
        changed = api.dataset.update("work_orders", 7, seed=1)
        result = client.fetch("work_orders", ["WO_NO", "ORA_ROWSCN"], since_rowversion=top)
        assert sorted(result.frame.get_column("WO_NO").to_list()) == sorted(k[0] for k in changed)
        limited = client.fetch("work_orders", ["WO_NO"], max_rows=120)
        assert limited.frame.height == 120 and limited.truncated


def test_keys_listing_tracks_deletes() -> None:
    with running_apismith(SPEC) as api, ApiSmithClient(api.url, api.token) as client:
        before = client.keys("work_order_operations", ["WO_NO", "OP_SEQ"])
        assert before.columns == ["WO_NO", "OP_SEQ"] and before.height == 0  # no operations in SPEC
        keys = client.keys("work_orders", ["WO_NO"])
        gone = api.dataset.delete("work_orders", 5, seed=3)
        after = client.keys("work_orders", ["WO_NO"])
        assert after.height == keys.height - 5
        assert not set(after.get_column("WO_NO")) & {k[0] for k in gone}


def test_transient_faults_are_retried_and_the_data_is_the_same() -> None:
    with running_apismith(SPEC) as clean, ApiSmithClient(clean.url, clean.token, page_size=60) as c:
        expected = c.fetch("work_orders", ["WO_NO", "ORDER_QTY"]).frame
    sleeps: list[float] = []
    with running_apismith(
        SPEC, faults="at=1:429;2:503;3:drop;5:drop;6:latency,latency=0:20,retry_after=2"
    ) as api:
        with ApiSmithClient(
            api.url, api.token, retry=_fast_retry(sleeps=sleeps), page_size=60
        ) as client:
            got = client.fetch("work_orders", ["WO_NO", "ORDER_QTY"]).frame
        kinds = [kind for _, kind, _ in api.injector.injected]
    assert got.equals(expected)
    assert kinds[:4] == ["429", "503", "drop", "drop"]
    assert len(sleeps) == 4 and sleeps[0] >= 2  # Retry-After honoured


def test_retries_are_bounded() -> None:
    with (
        running_apismith(SPEC, faults="503=1") as api,
        ApiSmithClient(api.url, api.token, retry=_fast_retry(max_retries=2)) as client,
        pytest.raises(RetriesExhaustedError, match=r"gave up after 2 retries.*503"),
    ):
        client.fetch("work_orders", ["WO_NO"])


def test_wrong_token_and_unknown_entity_fail_at_once_with_a_hint() -> None:
    with running_apismith(SPEC, token="right-token") as api:
        with (
            ApiSmithClient(api.url, "wrong-token", retry=_fast_retry()) as client,
            pytest.raises(AuthError, match="check APISMITH_TOKEN") as err,
        ):
            client.entities()
        assert "wrong-token" not in str(err.value) and "right-token" not in str(err.value)
        with (
            ApiSmithClient(api.url, api.token, retry=_fast_retry()) as client,
            pytest.raises(NotFoundError, match="404"),
        ):
            client.fetch("no_such_entity", ["X"])
