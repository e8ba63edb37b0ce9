"""ScheduleHub client: entity schemas, batched ingest with concurrent batches, read-back.

An ingest batch that fails transiently (429/502/503/504, timeout, a connection
dropped before the answer) may or may not have been applied; it is resent as
it was, which the hub's idempotency makes safe (applied upserts answer
``unchanged``, applied deletes ``not_found``).
"""

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from syncflow_dagster.edges.http import ApiError, check_response, json_body, request_line
from syncflow_dagster.edges.lean_http import bearer_client
from syncflow_dagster.edges.retry import RetryPolicy
from syncflow_dagster.errors import error_kind
from syncflow_dagster.logs import upstream_call
from syncflow_dagster.settings import mask_url

UNSENT_IN_A_ROW = 3
"""Batches failing transiently one after another that mean the hub is down (the run fails)."""

SERVICE = "ScheduleHub"
TOKEN_SETTING = "SCHEDULEHUB_TOKEN"
MAX_BATCH = 1000
ACKNOWLEDGED = frozenset({"created", "updated", "unchanged", "deleted", "not_found"})


@dataclass(frozen=True)
class HubField:
    """A field of a hub entity schema."""

    name: str
    type: str
    required: bool


@dataclass(frozen=True)
class HubEntity:
    """An entity schema as the hub serves it."""

    name: str
    fields: dict[str, HubField]
    parents: tuple[str, ...]


@dataclass(frozen=True)
class Rejection:
    """One record the hub rejected: its position in the batch, id, code and detail."""

    position: int
    external_id: str
    code: str
    detail: str


@dataclass
class BatchOutcome:
    """The hub's answer to one batch: counts per status and the rejections."""

    index: int
    size: int
    statuses: Counter[str] = field(default_factory=Counter)
    rejections: list[Rejection] = field(default_factory=list)
    attempts: int = 1


_QUICK = {status: f'"status":"{status}"'.encode() for status in ACKNOWLEDGED}


def _quick_statuses(body: bytes, size: int) -> dict[str, int] | None:
    """Status counts of an answer with no rejection, read without parsing every result.

    Only when the compact ``"status":"…"`` spellings account for exactly ``size``
    results and nothing was rejected; otherwise None, and the caller parses the
    answer in full (any server's formatting is handled there).
    """
    if b"rejected" in body:
        return None
    counts = {status: body.count(pattern) for status, pattern in _QUICK.items()}
    if sum(counts.values()) != size or body.count(b'"status"') != size:
        return None
    return {status: n for status, n in counts.items() if n}


def _unexpected(what: str, asked: str | None, doc: object, why: object) -> ApiError:
    """A JSON answer that does not have the contract's shape."""
    start = orjson.dumps(doc)[:120].decode("utf-8", errors="replace")
    return ApiError(
        f"{SERVICE} {what}" + (f" ({asked})" if asked else "") + f": the JSON answer does not "
        f"follow the ScheduleHub contract ({why}); it starts {start!r}; check that "
        "SCHEDULEHUB_URL points at a ScheduleHub API"
    )


class ScheduleHubClient:
    """A client of one ScheduleHub server."""

    def __init__(
        self,
        base_url: str,
        token: str,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        workers: int = 4,
    ) -> None:
        self.workers = max(1, workers)
        self._http = bearer_client(base_url, token, timeout, connections=self.workers + 1)
        self._url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()

    def close(self) -> None:
        """Close the idle connections."""
        self._http.close()

    def __enter__(self) -> "ScheduleHubClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, what: str, method: str, path: str, **kw: Any) -> httpx.Response:
        """The answer to one request, checked; transient failures retried (attempts counted)."""
        attempts = {"n": 0}

        def once() -> httpx.Response:
            attempts["n"] += 1
            response = self._http.request(method, path, **kw)
            check_response(SERVICE, TOKEN_SETTING, what, response)
            return response

        with upstream_call(SERVICE, method, self._url + path) as on_retry:
            response = self.retry.call(
                f"{SERVICE} {what}", once, on_retry, mask_url(self._url + path)
            )
        response.extensions["syncflow_attempts"] = attempts["n"]
        return response

    def _json(self, what: str, method: str, path: str, **kw: Any) -> Any:
        """The JSON answer to one request (see :meth:`_call`).

        Raises:
            ApiError: when the answer is not JSON (e.g. an HTML page), naming what was asked.
        """
        return json_body(SERVICE, what, self._call(what, method, path, **kw))

    def entities(self) -> dict[str, HubEntity]:
        """The entity schemas the hub accepts, by name.

        Raises:
            ApiError: when the answer is not the contract's entity list.
        """
        doc = self._json("entity list", "GET", "/api/v1/entities")
        try:
            return {
                e["name"]: HubEntity(
                    name=e["name"],
                    fields={
                        f["name"]: HubField(f["name"], f["type"], bool(f["required"]))
                        for f in e["fields"]
                    },
                    parents=tuple(e.get("parents") or ()),
                )
                for e in doc["entities"]
            }
        except (KeyError, TypeError, AttributeError) as exc:
            why = f"no {exc}" if isinstance(exc, KeyError) else exc
            raise _unexpected("entity list", "GET /api/v1/entities", doc, why) from None

    def ingest_body(self, entity: str, body: bytes, size: int, index: int = 0) -> BatchOutcome:
        """Send one prepared batch body of ``size`` records; resent on transient failures.

        Raises:
            ApiError: when the hub refuses the whole batch (404 unknown entity,
                413 too large, 422 malformed), or answers with the wrong number of results.
        """
        if size > MAX_BATCH:
            raise ValueError(f"a batch holds at most {MAX_BATCH} records, got {size}")
        response = self._call(
            f"ingest into '{entity}'",
            "POST",
            f"/api/v1/ingest/{entity}",
            body=body,
            headers={"Content-Type": "application/json"},
        )
        outcome = BatchOutcome(
            index=index, size=size, attempts=response.extensions["syncflow_attempts"]
        )
        quick = _quick_statuses(response.content, size)
        if quick is not None:
            outcome.statuses.update(quick)
            return outcome
        what = f"ingest into '{entity}'"
        doc = json_body(SERVICE, what, response)
        results = doc.get("results") if isinstance(doc, dict) else None
        if not isinstance(results, list) or not all(
            isinstance(r, dict) and "status" in r for r in results
        ):
            raise _unexpected(what, request_line(response), doc, "no 'results' list of statuses")
        if len(results) != size:
            raise ApiError(
                f"{SERVICE} ingest into '{entity}': {len(results)} results for {size} records"
            )
        outcome.statuses.update(r["status"] for r in results)
        if outcome.statuses.get("rejected"):
            for pos, r in enumerate(results):
                if r["status"] == "rejected":
                    err = r.get("error") or {}
                    outcome.rejections.append(
                        Rejection(
                            pos,
                            r.get("external_id", ""),
                            err.get("code", ""),
                            err.get("detail", ""),
                        )
                    )
        unknown = set(outcome.statuses) - ACKNOWLEDGED - {"rejected"}
        if unknown:
            raise ApiError(f"{SERVICE} ingest into '{entity}': unknown statuses {sorted(unknown)}")
        return outcome

    def ingest_many(
        self,
        entity: str,
        batches: int,
        make_body: Callable[[int], tuple[bytes, int]],
        on_outcome: Callable[[BatchOutcome], None],
        on_unsent: Callable[[int, BaseException], None] | None = None,
        unsent_in_a_row: int = UNSENT_IN_A_ROW,
    ) -> None:
        """Send ``batches`` batches concurrently (up to ``workers`` in flight).

        ``make_body(i)`` gives batch ``i``'s body and record count when the batch
        is about to go, so only the batches in flight are held in memory; a batch
        of no records is not sent (and has no outcome).
        ``on_outcome`` is called once per batch as its answer arrives, from one
        thread at a time. The first permanent failure stops further batches and is raised.

        With ``on_unsent``, a batch that still fails transiently after the
        client's own retries (the hub down, timeouts) is reported to it, with
        its error, and the other batches go on — unless ``unsent_in_a_row``
        batches failed one after another, or none got through at all: the hub
        is down, and the last error is raised. A failure to make a body (e.g.
        the run lost its lease) always stops.
        """
        lock = threading.Lock()
        failed: list[BaseException] = []
        in_a_row = [0]
        answered: list[int] = []
        unsent: list[tuple[int, BaseException]] = []

        def send(index: int) -> None:
            if failed:
                return
            try:
                body, size = make_body(index)
                if size == 0:  # nothing to send in this batch
                    return
            except BaseException as exc:
                failed.append(exc)
                return
            try:
                outcome = self.ingest_body(entity, body, size, index)
            except BaseException as exc:
                with lock:
                    if on_unsent is None or error_kind(exc) != "transient" or failed:
                        failed.append(exc)
                        return
                    in_a_row[0] += 1
                    if in_a_row[0] >= unsent_in_a_row:
                        failed.append(exc)
                        return
                    unsent.append((index, exc))
                return
            with lock:
                in_a_row[0] = 0
                answered.append(index)
                on_outcome(outcome)

        if self.workers == 1 or batches == 1:
            for i in range(batches):
                send(i)
        else:
            with ThreadPoolExecutor(self.workers, thread_name_prefix=f"hub-{entity}") as pool:
                list(pool.map(send, range(batches)))
        if failed:
            raise failed[0]
        if unsent and not answered:
            raise unsent[-1][1]  # nothing got through: the hub is down
        for index, exc in unsent:
            assert on_unsent is not None
            on_unsent(index, exc)

    def records(self, entity: str, page_size: int = 10_000) -> Iterator[dict[str, Any]]:
        """Every stored record of an entity (for checks and the demo)."""
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": page_size}
            if cursor:
                params["cursor"] = cursor
            what = f"records of '{entity}'"
            doc = self._json(what, "GET", f"/api/v1/entities/{entity}/records", params=params)
            if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
                raise _unexpected(what, f"GET /api/v1/entities/{entity}/records", doc, "no records")
            yield from doc["records"]
            cursor = doc.get("next_cursor")
            if not cursor:
                return
