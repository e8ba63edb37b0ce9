"""The admin API (not part of the contract): mutate the emulated ERP over HTTP.

All routes are ``POST /admin/entities/{entity}/{action}`` with a JSON body, answered with
``{"entity": ..., "keys": [[...], ...]}`` — the keys the mutation touched:

* ``update`` / ``insert`` / ``delete`` — ``{"n": 10, "seed": 1}``: random rows;
* ``rows`` — ``{"rows": [{"WO_NO": "WO-X1", "ITEM_NO": "ITM-NEW"}, ...]}``: insert these
  rows (true values; columns left out are generated);
* ``update-keys`` — ``{"keys": [["WO-00000001"]], "changes": {"PRIORITY": 1}}``
  (``changes`` left out: new random values);
* ``delete-keys`` — ``{"keys": [["WO-00000001"]]}``;
* ``raw-lines`` (sandbox) — ``{"lines": [{"key": ["WO-00000001"], "line": "[1, 2]"}]}``:
  serve these exact NDJSON lines for those rows instead of their rendering
  (``"line_base64"`` instead of ``"line"`` for bytes that are not UTF-8); ``{"clear": true}``
  renders every row normally again.

Auth is required as for the API; faults are never injected here.
"""

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syncflow_dagster.emulators.apismith.coerce import MutationError
from syncflow_dagster.emulators.apismith.dataset import ErpDataset
from syncflow_dagster.emulators.apismith.schema import ENTITIES
from syncflow_dagster.emulators.apismith.store import KeyTuple
from syncflow_dagster.emulators.common.problem import problem

Action = Callable[[ErpDataset, str, dict[str, Any]], list[KeyTuple]]


def _count(body: dict[str, Any]) -> tuple[int, int]:
    n, seed = body.get("n"), body.get("seed", 0)
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise MutationError('"n" must be a non-negative integer')
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise MutationError('"seed" must be an integer')
    return n, seed


def _list(body: dict[str, Any], name: str) -> list[Any]:
    value = body.get(name)
    if not isinstance(value, list):
        raise MutationError(f'"{name}" must be a list')
    return value


def _changes(body: dict[str, Any]) -> dict[str, Any] | None:
    changes = body.get("changes")
    if changes is not None and not isinstance(changes, dict):
        raise MutationError('"changes" must be an object')
    return changes


def _raw_lines(ds: ErpDataset, name: str, body: dict[str, Any]) -> list[KeyTuple]:
    if body.get("clear") is True:
        ds.clear_raw_lines(name)
        return []
    lines: dict[tuple[object, ...], bytes | str] = {}
    for entry in _list(body, "lines"):
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), list):
            raise MutationError('each of "lines" must be {"key": [...], "line": "..."}')
        if isinstance(entry.get("line"), str):
            lines[tuple(entry["key"])] = entry["line"]
        elif isinstance(entry.get("line_base64"), str):
            try:
                lines[tuple(entry["key"])] = base64.b64decode(entry["line_base64"], validate=True)
            except binascii.Error:
                raise MutationError('"line_base64" is not base64') from None
        else:
            raise MutationError('each of "lines" needs "line" (text) or "line_base64"')
    return ds.serve_raw_lines(name, lines)


ACTIONS: dict[str, Action] = {
    "update": lambda ds, name, body: ds.update(name, *_count(body)),
    "insert": lambda ds, name, body: ds.insert(name, *_count(body)),
    "delete": lambda ds, name, body: ds.delete(name, *_count(body)),
    "rows": lambda ds, name, body: ds.insert_rows(name, _list(body, "rows")),
    "update-keys": lambda ds, name, body: ds.update_keys(name, _list(body, "keys"), _changes(body)),
    "delete-keys": lambda ds, name, body: ds.delete_keys(name, _list(body, "keys")),
    "raw-lines": _raw_lines,
}


def admin_routes(
    dataset: ErpDataset, on_change: Callable[[ErpDataset], None] | None = None
) -> list[Route]:
    """The admin routes over ``dataset``; ``on_change(dataset)`` after every change."""

    async def mutate(request: Request) -> Response:
        name = request.path_params["entity"]
        action = ACTIONS.get(request.path_params["action"])
        if name not in ENTITIES or action is None:
            return problem(404, "unknown entity or admin action")
        try:
            body = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError:
            return problem(400, "the body is not JSON")
        if not isinstance(body, dict):
            return problem(400, "the body must be a JSON object")
        try:
            keys = action(dataset, name, body)
        except MutationError as exc:
            return problem(400, str(exc))
        # Re-sort now, as a database would keep its index: the next reader should
        # not pay for the emulator's bookkeeping.
        dataset.views(name)
        if on_change is not None:
            on_change(dataset)
        payload = {"entity": name, "keys": [list(k) for k in keys]}
        return Response(orjson.dumps(payload), media_type="application/json")

    handler: Callable[[Request], Awaitable[Response]] = mutate
    return [Route("/admin/entities/{entity}/{action}", handler, methods=["POST"])]
