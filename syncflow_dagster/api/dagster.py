"""Dagster as the API sees it: the running webserver's GraphQL API.

Runs are launched, terminated and the code location reloaded with the
``dagster-graphql`` client (``DagsterGraphQLClient``), so a run started here
is an ordinary run of the deployment: it shows in the UI, waits in the run
queue and obeys its concurrency limits. Reads (runs, schedules, sensors, the
daemon's health) are plain GraphQL queries over HTTP with a short timeout.

SyncFlow's code location is found by the job it always has
(``resolve_failed_records_job``), whatever the workspace calls it.
"""

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

from syncflow_dagster.settings import mask_url

log = logging.getLogger(__name__)

MARKER_JOB = "resolve_failed_records_job"
FINISHED = frozenset({"SUCCESS", "FAILURE", "CANCELED"})
ACTIVE = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


class DagsterUnavailableError(Exception):
    """The webserver could not be reached or answered with an error (HTTP 502)."""


class DagsterRefusedError(Exception):
    """Dagster understood and refused (a job it does not know, invalid run config)."""


@dataclass(frozen=True)
class RunInfo:
    """A run as Dagster knows it."""

    run_id: str
    job: str
    status: str
    tags: dict[str, str]
    created_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None


@dataclass(frozen=True)
class Instigator:
    """A schedule or a sensor and whether it runs."""

    name: str
    kind: str  # "schedule" | "sensor"
    status: str  # "RUNNING" | "STOPPED"
    state_id: str = field(default="", repr=False)


@dataclass(frozen=True)
class DaemonState:
    """One of the daemon's parts."""

    daemon_type: str
    required: bool
    healthy: bool | None
    last_heartbeat: datetime | None
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReloadOutcome:
    """What a reload of the code location did."""

    ok: bool
    detail: str | None = None


class DagsterPort(Protocol):
    """What the API asks of Dagster (a fake stands in for it in tests)."""

    url: str

    def launch(self, job: str, run_config: dict[str, Any], tags: dict[str, str]) -> str:
        """Submit a run; its id."""
        ...

    def run(self, run_id: str) -> RunInfo | None:
        """One run, or None."""
        ...

    def runs(
        self,
        *,
        run_ids: list[str] | None = None,
        job: str | None = None,
        statuses: list[str] | None = None,
        tags: dict[str, str] | None = None,
        limit: int = 50,
    ) -> list[RunInfo]:
        """Runs, newest first."""
        ...

    def terminate(self, run_id: str) -> None:
        """Ask the run to stop."""
        ...

    def reload_location(self) -> ReloadOutcome:
        """Reload SyncFlow's code location (after the entity configuration changed)."""
        ...

    def instigators(self) -> list[Instigator]:
        """SyncFlow's schedules and sensors."""
        ...

    def switch(self, instigator: Instigator, running: bool) -> Instigator:
        """Start or stop a schedule or sensor; its new state."""
        ...

    def daemon_health(self) -> list[DaemonState]:
        """The daemon's parts and their heartbeats."""
        ...

    def ping(self) -> None:
        """Raise unless the webserver answers."""
        ...

    def ui_url(self, run_id: str) -> str:
        """Where the UI shows a run."""
        ...


_RUN_FIELDS = "runId jobName status creationTime startTime endTime tags { key value }"

_RUNS_QUERY = f"""
query SyncFlowRuns($filter: RunsFilter, $limit: Int) {{
  runsOrError(filter: $filter, limit: $limit) {{
    __typename
    ... on Runs {{ results {{ {_RUN_FIELDS} }} }}
    ... on InvalidPipelineRunsFilterError {{ message }}
    ... on PythonError {{ message }}
  }}
}}
"""

_LOCATION_QUERY = """
query SyncFlowLocation {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } jobs { name } } }
    ... on PythonError { message }
  }
}
"""

_INSTIGATORS_QUERY = """
query SyncFlowInstigators($selector: RepositorySelector!) {
  schedulesOrError(repositorySelector: $selector) {
    __typename
    ... on Schedules { results { name scheduleState { id status } } }
    ... on PythonError { message }
    ... on RepositoryNotFoundError { message }
  }
  sensorsOrError(repositorySelector: $selector) {
    __typename
    ... on Sensors { results { name sensorState { id status } } }
    ... on PythonError { message }
    ... on RepositoryNotFoundError { message }
  }
}
"""

_START_SCHEDULE = """
mutation SyncFlowStartSchedule($selector: ScheduleSelector!) {
  startSchedule(scheduleSelector: $selector) {
    __typename
    ... on ScheduleStateResult { scheduleState { id status } }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
    ... on ScheduleNotFoundError { message }
  }
}
"""

_STOP_SCHEDULE = """
mutation SyncFlowStopSchedule($id: String!) {
  stopRunningSchedule(id: $id) {
    __typename
    ... on ScheduleStateResult { scheduleState { id status } }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
    ... on ScheduleNotFoundError { message }
  }
}
"""

_START_SENSOR = """
mutation SyncFlowStartSensor($selector: SensorSelector!) {
  startSensor(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { id status } }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
    ... on SensorNotFoundError { message }
  }
}
"""

_STOP_SENSOR = """
mutation SyncFlowStopSensor($id: String!) {
  stopSensor(id: $id) {
    __typename
    ... on StopSensorMutationResult { instigationState { id status } }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}
"""

_DAEMON_QUERY = """
query SyncFlowDaemons {
  instance {
    daemonHealth {
      allDaemonStatuses {
        daemonType required healthy lastHeartbeatTime lastHeartbeatErrors { message }
      }
    }
  }
}
"""


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _run(node: dict[str, Any]) -> RunInfo:
    return RunInfo(
        run_id=node["runId"],
        job=node["jobName"],
        status=node["status"],
        tags={t["key"]: t["value"] for t in node.get("tags") or []},
        created_at=_time(node.get("creationTime")),
        started_at=_time(node.get("startTime")),
        ended_at=_time(node.get("endTime")),
    )


def _refusal(result: dict[str, Any]) -> str:
    return f"{result.get('__typename')}: {result.get('message') or 'no message'}"


class DagsterGateway:
    """The webserver at ``url`` (DAGSTER_WEBSERVER_URL), over GraphQL."""

    def __init__(self, url: str, timeout: float = 30.0, quick_timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self._quick = quick_timeout
        parts = urlsplit(self.url)
        self._shown = mask_url(self.url)
        self._http = httpx.Client(base_url=self.url, timeout=timeout)
        self._client = DagsterGraphQLClient(
            parts.hostname or "127.0.0.1",
            port_number=parts.port,
            use_https=parts.scheme == "https",
            timeout=int(max(timeout, 1)),
            path_prefix=parts.path.rstrip("/"),
        )
        self._location: tuple[str, str] | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    # --- plumbing ---------------------------------------------------------------------------

    def _graphql(
        self, query: str, variables: dict[str, Any] | None = None, quick: bool = False
    ) -> dict[str, Any]:
        timeout = self._quick if quick else httpx.USE_CLIENT_DEFAULT
        try:
            answer = self._http.post(
                "/graphql", json={"query": query, "variables": variables}, timeout=timeout
            )
        except httpx.HTTPError as exc:
            raise DagsterUnavailableError(
                f"the Dagster webserver at {self._shown} cannot be reached "
                f"({type(exc).__name__}); is `dagster dev` (or dagster-webserver) running "
                "there? (DAGSTER_WEBSERVER_URL)"
            ) from None
        if answer.status_code != 200:
            raise DagsterUnavailableError(
                f"the Dagster webserver at {self._shown} answered HTTP {answer.status_code}"
            )
        try:
            doc = answer.json()
        except ValueError:
            raise DagsterUnavailableError(
                f"{self._shown}/graphql did not answer JSON: is DAGSTER_WEBSERVER_URL a "
                "Dagster webserver?"
            ) from None
        if doc.get("errors"):
            first = doc["errors"][0].get("message", "unknown error")
            raise DagsterUnavailableError(f"Dagster's GraphQL API refused a query: {first}")
        return dict(doc.get("data") or {})

    def _client_call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DagsterGraphQLClientError as exc:
            kind = exc.args[0] if exc.args else "error"
            message = str(exc.args[1]) if len(exc.args) > 1 else ""
            if "connect" in str(kind).lower() or "Server error" in str(kind):
                raise DagsterUnavailableError(
                    f"{what}: the Dagster webserver at {self._shown} cannot be reached"
                ) from None
            raise DagsterRefusedError(f"{what}: Dagster answered {kind}: {message[:500]}") from None
        except OSError as exc:
            raise DagsterUnavailableError(
                f"{what}: the Dagster webserver at {self._shown} cannot be reached "
                f"({type(exc).__name__})"
            ) from None

    def location(self, refresh: bool = False) -> tuple[str, str]:
        """``(location name, repository name)`` of SyncFlow's code location."""
        with self._lock:
            if self._location is not None and not refresh:
                return self._location
        result = self._graphql(_LOCATION_QUERY)["repositoriesOrError"]
        if result["__typename"] != "RepositoryConnection":
            raise DagsterUnavailableError(f"Dagster could not list its code: {_refusal(result)}")
        for node in result["nodes"]:
            if any(job["name"] == MARKER_JOB for job in node.get("jobs") or []):
                found = (node["location"]["name"], node["name"])
                with self._lock:
                    self._location = found
                return found
        raise DagsterUnavailableError(
            f"the Dagster webserver at {self._shown} has no SyncFlow code location (no "
            f"{MARKER_JOB}): it may be loading, or failed to load; see the UI's deployment page"
        )

    # --- runs -------------------------------------------------------------------------------

    def launch(self, job: str, run_config: dict[str, Any], tags: dict[str, str]) -> str:
        """Submit a run of ``job`` through the webserver (it goes through the run queue)."""
        location, repository = self.location()

        def submit() -> str:
            return str(
                self._client_call(
                    f"launching {job}",
                    self._client.submit_job_execution,
                    job,
                    repository_location_name=location,
                    repository_name=repository,
                    run_config=run_config,
                    tags=tags,
                )
            )

        try:
            return submit()
        except DagsterRefusedError as exc:
            if "NotFound" not in str(exc):
                raise
        # The location may have been reloaded under another name meanwhile: look again.
        location, repository = self.location(refresh=True)
        return submit()

    def run(self, run_id: str) -> RunInfo | None:
        """One run, or None when Dagster has no such run."""
        found = self.runs(run_ids=[run_id], limit=1)
        return found[0] if found else None

    def runs(
        self,
        *,
        run_ids: list[str] | None = None,
        job: str | None = None,
        statuses: list[str] | None = None,
        tags: dict[str, str] | None = None,
        limit: int = 50,
    ) -> list[RunInfo]:
        """Runs matching every filter given, newest first."""
        run_filter: dict[str, Any] = {}
        if run_ids is not None:
            run_filter["runIds"] = run_ids
        if job is not None:
            run_filter["pipelineName"] = job
        if statuses is not None:
            run_filter["statuses"] = statuses
        if tags:
            run_filter["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        result = self._graphql(_RUNS_QUERY, {"filter": run_filter, "limit": limit})["runsOrError"]
        if result["__typename"] != "Runs":
            raise DagsterUnavailableError(f"Dagster could not list runs: {_refusal(result)}")
        return [_run(node) for node in result["results"]]

    def terminate(self, run_id: str) -> None:
        """Ask Dagster to terminate the run (it moves to CANCELING, then CANCELED)."""
        self._client_call(f"terminating run {run_id}", self._client.terminate_run, run_id)

    def reload_location(self) -> ReloadOutcome:
        """Reload SyncFlow's code location so that jobs follow the entity configuration."""
        try:
            location, _ = self.location(refresh=True)
        except DagsterUnavailableError as exc:
            return ReloadOutcome(False, str(exc))
        try:
            info = self._client_call(
                f"reloading {location}", self._client.reload_repository_location, location
            )
        except (DagsterUnavailableError, DagsterRefusedError) as exc:
            return ReloadOutcome(False, str(exc))
        status = getattr(info.status, "value", str(info.status))
        if status != "SUCCESS":
            return ReloadOutcome(False, f"{info.failure_type}: {info.message}")
        return ReloadOutcome(True, f"code location '{location}' reloaded")

    # --- schedules and sensors ---------------------------------------------------------------

    def instigators(self) -> list[Instigator]:
        """Every schedule and sensor of SyncFlow's code location, by name."""
        location, repository = self.location()
        selector = {"repositoryLocationName": location, "repositoryName": repository}
        data = self._graphql(_INSTIGATORS_QUERY, {"selector": selector})
        found: list[Instigator] = []
        for key, kind, state in (
            ("schedulesOrError", "schedule", "scheduleState"),
            ("sensorsOrError", "sensor", "sensorState"),
        ):
            result = data[key]
            if "results" not in result:
                raise DagsterUnavailableError(f"Dagster could not list {kind}s: {_refusal(result)}")
            for node in result["results"]:
                found.append(
                    Instigator(node["name"], kind, node[state]["status"], node[state]["id"])
                )
        return sorted(found, key=lambda i: (i.kind, i.name))

    def switch(self, instigator: Instigator, running: bool) -> Instigator:
        """Start or stop one schedule or sensor (startSchedule / stopRunningSchedule, …)."""
        if instigator.status == ("RUNNING" if running else "STOPPED"):
            return instigator
        location, repository = self.location()
        base = {"repositoryLocationName": location, "repositoryName": repository}
        if instigator.kind == "schedule":
            if running:
                selector = {**base, "scheduleName": instigator.name}
                data = self._graphql(_START_SCHEDULE, {"selector": selector})["startSchedule"]
            else:
                data = self._graphql(_STOP_SCHEDULE, {"id": instigator.state_id})[
                    "stopRunningSchedule"
                ]
            state = (data.get("scheduleState") or {}) if isinstance(data, dict) else {}
        elif running:
            selector = {**base, "sensorName": instigator.name}
            data = self._graphql(_START_SENSOR, {"selector": selector})["startSensor"]
            state = data.get("sensorState") or {}
        else:
            data = self._graphql(_STOP_SENSOR, {"id": instigator.state_id})["stopSensor"]
            state = data.get("instigationState") or {}
        if not state:
            raise DagsterRefusedError(
                f"{'starting' if running else 'stopping'} {instigator.kind} {instigator.name}: "
                f"{_refusal(data)}"
            )
        return Instigator(
            instigator.name, instigator.kind, state["status"], state.get("id", instigator.state_id)
        )

    # --- health -----------------------------------------------------------------------------

    def daemon_health(self) -> list[DaemonState]:
        """The daemon's parts as the instance records their heartbeats."""
        data = self._graphql(_DAEMON_QUERY, quick=True)
        out = []
        for node in data["instance"]["daemonHealth"]["allDaemonStatuses"]:
            out.append(
                DaemonState(
                    node["daemonType"],
                    bool(node["required"]),
                    node["healthy"],
                    _time(node.get("lastHeartbeatTime")),
                    tuple(e["message"][:300] for e in node.get("lastHeartbeatErrors") or []),
                )
            )
        return out

    def ping(self) -> None:
        """Raise unless the webserver answers its /server_info."""
        try:
            answer = self._http.get("/server_info", timeout=self._quick)
        except httpx.HTTPError as exc:
            raise DagsterUnavailableError(
                f"the Dagster webserver at {self._shown} cannot be reached ({type(exc).__name__})"
            ) from None
        if answer.status_code != 200:
            raise DagsterUnavailableError(
                f"the Dagster webserver at {self._shown} answered HTTP {answer.status_code}"
            )

    def ui_url(self, run_id: str) -> str:
        """The run's page in the Dagster UI."""
        return f"{self._shown}/runs/{run_id}"
