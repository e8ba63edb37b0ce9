"""The shipped sensors, tick by tick, with build_sensor_context over a real state store."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl
import pytest

from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.orchestration.build import build_definitions
from syncflow_dagster.orchestration.factories import sensors
from syncflow_dagster.orchestration.resources import StateStoreResource
from syncflow_dagster.settings import load_settings

WAITING_FOR = '[{"entity": "items", "bk_hash": "' + "ab" * 16 + '"}]'


@pytest.fixture
def store(pg_url: str) -> StateStore:
    s = StateStore(pg_url)
    s.migrate()
    return s


@pytest.fixture
def defs() -> dg.Definitions:
    return build_definitions(load_settings(background_sync_enabled=True))


def _wait(store: StateStore, entity: str, keys: list[str], due_in: float) -> None:
    batch = store.start_batch(entity, "run-q", "incremental")
    when = datetime.now(UTC) + timedelta(seconds=due_in)
    store.add_pending(
        entity,
        batch,
        pl.DataFrame(
            {
                "bk_hash": keys,
                "payload": ['{"op": "upsert"}'] * len(keys),
                "waiting_for": [WAITING_FOR] * len(keys),
                "next_retry_at": [when] * len(keys),
            }
        ),
    )


def _tick(
    sensor: dg.SensorDefinition, store: StateStore, pg_url: str, cursor: str | None = None
) -> dg.SensorResult:
    resources = {"state": StateStoreResource(database_url=pg_url)}
    with dg.build_sensor_context(cursor=cursor, resources=resources) as context:
        return sensor(context)  # type: ignore[no-any-return]


def test_pending_children_sensor_requests_only_entities_with_due_children(
    defs: dg.Definitions, store: StateStore, pg_url: str
) -> None:
    sensor = defs.get_sensor_def("pending_children_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    _wait(store, "work_orders", ["01" * 16], due_in=3600)  # backing off
    assert _tick(sensor, store, pg_url).run_requests == []
    _wait(store, "work_order_operations", ["02" * 16, "03" * 16], due_in=-1)  # due
    result = _tick(sensor, store, pg_url)
    [request] = result.run_requests or []
    assert request.job_name == "retry_work_order_operations_job"
    assert request.tags["syncflow/entity"] == "work_order_operations"
    # The same due rows give the same run key: a second tick launches nothing new.
    [again] = _tick(sensor, store, pg_url, result.cursor).run_requests or []
    assert again.run_key == request.run_key


def test_pending_children_sensor_pages_through_a_long_queue_with_its_cursor(
    defs: dg.Definitions, store: StateStore, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sensors, "DUE_PAGE", 2)
    sensor = defs.get_sensor_def("pending_children_sensor")
    _wait(store, "work_orders", ["01" * 16, "02" * 16], due_in=-1)
    _wait(store, "work_order_operations", ["03" * 16], due_in=-1)
    first = _tick(sensor, store, pg_url)
    assert [r.job_name for r in first.run_requests or []] == ["retry_work_orders_job"]
    assert first.cursor and '"after":0' not in first.cursor  # a full page: read on next tick
    second = _tick(sensor, store, pg_url, first.cursor)
    assert [r.job_name for r in second.run_requests or []] == ["retry_work_order_operations_job"]
    assert second.cursor == '{"after":0}'  # the end: start over next tick


def test_parent_synced_sensor_retries_the_children_of_a_synced_parent(
    defs: dg.Definitions, store: StateStore, pg_url: str
) -> None:
    sensor = defs.get_sensor_def("parent_synced_sensor")
    assert isinstance(sensor, dg.RunStatusSensorDefinition)

    @dg.op
    def noop() -> None:
        pass

    @dg.job(tags={"syncflow/entity": "items"})
    def sync_items_job() -> None:
        noop()

    with dg.instance_for_test() as instance:
        result = sync_items_job.execute_in_process(instance=instance)
        resources = {"state": StateStoreResource(database_url=pg_url)}

        def tick() -> list[dg.RunRequest]:
            context = dg.build_run_status_sensor_context(
                sensor_name="parent_synced_sensor",
                dagster_instance=instance,
                dagster_run=result.dagster_run,
                dagster_event=result.get_run_success_event(),
                resources=resources,
            )
            return list(
                sensor._run_status_sensor_fn(context, **{"state": resources["state"]}) or []
            )

        assert tick() == []  # nothing waits for an item
        _wait(store, "work_orders", ["04" * 16], due_in=3600)  # backing off, but its parent ran
        [request] = tick()
        assert request.job_name == "retry_work_orders_job"
        assert request.run_key == f"parent-synced:work_orders:{result.run_id}"


def test_dead_runs_sensor_closes_the_batch_of_a_finished_run(
    defs: dg.Definitions, store: StateStore, pg_url: str
) -> None:
    sensor = defs.get_sensor_def("dead_runs_sensor")

    @dg.op
    def boom() -> None:
        raise RuntimeError("killed")

    @dg.job
    def dying_job() -> None:
        boom()

    with dg.instance_for_test() as instance:
        failed = dying_job.execute_in_process(instance=instance, raise_on_error=False)
        batch = store.start_batch("items", failed.run_id, "incremental")
        store.acquire_lease("items", failed.run_id, 600)  # still "alive" by its lease
        resources = {"state": StateStoreResource(database_url=pg_url)}
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            skip = sensor(context)
        assert isinstance(skip, dg.SkipReason)
        closed = store.get_batch(batch)
        assert closed["status"] == "failed" and "failure" in closed["error"]
        assert store.get_lease("items") is None
