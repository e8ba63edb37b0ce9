"""APISmith client: entity descriptions, NDJSON keyset paging, key listings.

Pages are read as NDJSON with every column as text (JSON numbers arrive as
their text), so the normalizer sees each value as the ERP rendered it. The next
page is requested as soon as a page's headers name its cursor, while the page
before is still being parsed: paging is sequential on the wire but overlaps
with the parsing.

A page is read in one go (``pl.read_ndjson``). Only a page that this refuses is
read line by line: its readable lines become records as the one-go read would
have made them, and every other line becomes a row of ``FetchResult.bad_lines``
with a code, a detail and, as far as it can be read, its key and rowversion —
so one malformed ERP record no longer blocks the whole entity. The codes are
documented in docs/NORMALIZATION.md ("Lines the fetch cannot read").
"""

import contextlib
import io
import json
import logging
import queue
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx
import orjson
import polars as pl

from syncflow_dagster.edges.http import ApiError, check_response, json_body
from syncflow_dagster.edges.lean_http import bearer_client
from syncflow_dagster.edges.retry import RetryPolicy
from syncflow_dagster.logs import upstream_call
from syncflow_dagster.settings import mask_url

log = logging.getLogger(__name__)
SERVICE = "APISmith"
TOKEN_SETTING = "APISMITH_TOKEN"
MAX_PAGE = 50_000


@dataclass(frozen=True)
class SourceEntity:
    """An entity as APISmith describes it."""

    name: str
    key: tuple[str, ...]
    rowversion: str
    columns: dict[str, str]


class BadLineCode(StrEnum):
    """Why a line of a records page is not a readable record."""

    INVALID_UTF8 = "invalid_utf8"
    LONE_SURROGATE = "lone_surrogate"
    NON_FINITE_NUMBER = "non_finite_number"
    NOT_AN_OBJECT = "not_an_object"
    TRUNCATED = "truncated"
    UNREADABLE_JSON = "unreadable_json"


#: The columns of :attr:`FetchResult.bad_lines`.
BAD_LINE_SCHEMA: dict[str, pl.DataType] = {
    "line": pl.String(),
    "position": pl.Int64(),
    "code": pl.String(),
    "detail": pl.String(),
    "source_key": pl.String(),
    "rowversion": pl.Int64(),
}
#: At most this many characters of a bad line are kept.
BAD_LINE_CHARS = 10_000


def empty_bad_lines() -> pl.DataFrame:
    """A bad-lines frame with no rows."""
    return pl.DataFrame(schema=BAD_LINE_SCHEMA)


@dataclass(frozen=True)
class FetchResult:
    """The records of one fetch, as text columns, and whether a row limit cut it short.

    Attributes:
        frame: the readable records, in the order they were sent, every column text.
        pages: how many pages were read.
        truncated: whether ``max_rows`` cut the fetch short (bad lines count as rows).
        bad_lines: one row per line that is not a readable record (see
            :data:`BAD_LINE_SCHEMA`): ``line`` (its text, invalid UTF-8 replaced
            by U+FFFD, cut to :data:`BAD_LINE_CHARS` characters), ``position``
            (0-based, among all records of the fetch, bad lines included, across
            pages; blank lines are not records), ``code`` (a
            :class:`BadLineCode`), ``detail`` (the problem and where it is),
            ``source_key`` (the key columns' raw values as a JSON object, as
            dead letters carry them; a value that cannot be found is null) and
            ``rowversion`` (null unless it can be read).
    """

    frame: pl.DataFrame
    pages: int
    truncated: bool
    bad_lines: pl.DataFrame = field(default_factory=empty_bad_lines)
    next_cursor: str | None = None
    """Where a fetch cut short by ``max_rows`` resumes (APISmith's cursor); None otherwise."""


_BOM = b"\xef\xbb\xbf"
# What read_ndjson may raise over a bad page (a panic is not an Exception).
_READ_ERRORS = (pl.exceptions.PolarsError, pl.exceptions.PanicException)
# A JSON scalar as a best-effort parse finds it: a string, or a bare token.
_SCALAR = r'"(?:[^"\\]|\\.)*"|[^\s,}\]"][^\s,}\]]*'
_INTEGER = re.compile(r"[+-]?[0-9]+")
_INT64_MAX = 2**63 - 1
_SHOWN = 40


class _UnevenReadError(Exception):
    """read_ndjson made a different number of rows than it was given lines."""


def _read_lines(lines: Sequence[bytes], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    frame = pl.read_ndjson(io.BytesIO(b"\n".join(lines)), schema=schema)
    if frame.height != len(lines):
        raise _UnevenReadError(f"{len(lines)} line(s) read as {frame.height} row(s)")
    return frame


def _bisect(
    lines: Sequence[bytes], schema: dict[str, pl.DataType]
) -> tuple[list[pl.DataFrame], dict[int, str]]:
    """The lines read_ndjson reads, in order, and the error of each line it refuses."""
    frames: list[pl.DataFrame] = []
    refused: dict[int, str] = {}
    todo = [(0, len(lines))] if lines else []
    while todo:
        lo, hi = todo.pop()
        try:
            frames.append(_read_lines(lines[lo:hi], schema))
        except (*_READ_ERRORS, _UnevenReadError) as exc:
            if hi - lo == 1:
                refused[lo] = str(exc)
            else:
                mid = (lo + hi) // 2
                todo += [(mid, hi), (lo, mid)]  # the left half first: frames stay in order
    return frames, refused


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    """``text`` with control characters shown as U+FFFD."""
    return _CONTROL.sub("\ufffd", text)


def _near(text: str, at: int) -> str:
    """A quoted stretch of ``text`` around character ``at``, for a detail."""
    start = max(0, at - _SHOWN // 2)
    piece = text[start : start + _SHOWN]
    before = "…" if start > 0 else ""
    after = "…" if start + _SHOWN < len(text) else ""
    return f"'{before}{_printable(piece)}{after}'"


def _json_problem(text: str, message: str, at: int) -> tuple[BadLineCode, str]:
    """Code and problem in words of a line orjson refused with ``message`` at ``at``."""
    lowered = message.lower()
    if "surrogate" in lowered:
        return BadLineCode.LONE_SURROGATE, (
            "a lone surrogate escape (\\ud800-\\udfff without its pair) is not a character"
        )
    signed = at > 0 and text[at - 1] == "-"
    if (
        "infinity" in lowered
        or text.startswith(("NaN", "Infinity"), at)
        or (signed and text.startswith("Infinity", at))
    ):
        return BadLineCode.NON_FINITE_NUMBER, (
            "NaN, Infinity or a number beyond the 64-bit float range is not a JSON number"
        )
    if "end of data" in lowered or at >= len(text.rstrip(" \t\r")):
        return BadLineCode.TRUNCATED, "the line ends inside the record (cut short)"
    return BadLineCode.UNREADABLE_JSON, f"not valid JSON: {message}"


def _classify(line: bytes, refusal: str | None) -> tuple[BadLineCode, str, str]:
    """Code, problem and where of a line that is not a readable record."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        shown = line[exc.start : exc.start + 4].hex(" ")
        return BadLineCode.INVALID_UTF8, f"bytes that are not UTF-8 ({shown})", f"byte {exc.start}"
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        code, problem = _json_problem(text, exc.msg, exc.pos)
        return code, problem, f"character {exc.pos} ({_near(text, exc.pos)})"
    if not isinstance(value, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(value), "a number"
        )
        return BadLineCode.NOT_AN_OBJECT, f"{kind}, not a record (a JSON object)", "character 0"
    return BadLineCode.UNREADABLE_JSON, f"not readable as a record ({refusal})", "character 0"


def _json_text(token: str) -> str | None:
    """The value of a JSON scalar token as text (a best effort: never raises)."""
    if token == "null":
        return None
    if not token.startswith('"'):
        return token
    try:
        decoded = json.loads(token)  # accepts lone surrogates, which orjson refuses
    except ValueError:
        return token[1:-1]
    return str(decoded).encode("utf-8", "surrogatepass").decode("utf-8", "replace")


class _KeyFinder:
    """Finds the key columns' and the rowversion's values in a line that does not parse."""

    def __init__(self, key_columns: Sequence[str], rowversion: str | None) -> None:
        self.key_columns = tuple(key_columns)
        self.rowversion = rowversion
        names = [*self.key_columns, *([rowversion] if rowversion else [])]
        self._patterns = {
            name: re.compile(r'(?:^|[{,])\s*"' + re.escape(name) + r'"\s*:\s*(' + _SCALAR + ")")
            for name in names
        }

    def find(self, text: str, name: str) -> str | None:
        """The first value of ``name`` in ``text`` (the one read_ndjson would take)."""
        match = self._patterns[name].search(text)
        return _json_text(match.group(1)) if match else None

    def rowversion_of(self, text: str) -> int | None:
        """The rowversion, when the line has a whole number for it."""
        if self.rowversion is None:
            return None
        value = self.find(text, self.rowversion)
        value = value.strip() if value is not None else None
        if value is None or not _INTEGER.fullmatch(value) or abs(int(value)) > _INT64_MAX:
            return None
        return int(value)


@dataclass
class _BadLine:
    line: bytes
    position: int
    page: int
    line_number: int
    refusal: str | None


def _bad_lines_frame(bad: Sequence[_BadLine], finder: _KeyFinder) -> pl.DataFrame:
    """The bad lines as :data:`BAD_LINE_SCHEMA` rows: classified, key recovered."""
    if not bad:
        return empty_bad_lines()
    rows: dict[str, list[Any]] = {name: [] for name in BAD_LINE_SCHEMA}
    keys: dict[str, list[str | None]] = {name: [] for name in finder.key_columns}
    for item in bad:
        code, problem, where = _classify(item.line, item.refusal)
        text = item.line.rstrip(b"\r").decode("utf-8", "replace")
        cut = (
            f" (the line has {len(text)} characters; {BAD_LINE_CHARS} are kept)"
            if len(text) > BAD_LINE_CHARS
            else ""
        )
        rows["line"].append(text[:BAD_LINE_CHARS])
        rows["position"].append(item.position)
        rows["code"].append(code.value)
        rows["detail"].append(
            f"{problem}, at {where} of line {item.line_number} of page {item.page} "
            f"(record {item.position} of the fetch){cut}"
        )
        rows["rowversion"].append(finder.rowversion_of(text))
        for name in finder.key_columns:
            keys[name].append(finder.find(text, name))
    rows["source_key"] = [None] * len(bad)
    frame = pl.DataFrame(rows, schema=BAD_LINE_SCHEMA)
    if finder.key_columns:
        key_frame = pl.DataFrame(keys, schema=dict.fromkeys(finder.key_columns, pl.String()))
        source_key = key_frame.select(pl.struct(list(finder.key_columns)).struct.json_encode())
        frame = frame.with_columns(source_key.to_series().alias("source_key"))
    return frame


def _read_line_by_line(
    body: bytes, schema: dict[str, pl.DataType], page: int, first_position: int
) -> tuple[pl.DataFrame, list[_BadLine]]:
    """A page read_ndjson refused: its readable records, and its other lines.

    Each non-blank line is screened with orjson (a line it reads as an object
    is very likely readable); the likely ones — and the ones with a lone
    surrogate escape, which read_ndjson may read — then go through read_ndjson
    together, split in halves around any line it still refuses. So the records
    are exactly what read_ndjson makes of their lines.
    """
    records: list[tuple[int, bytes]] = []
    for number, raw in enumerate(body.split(b"\n"), start=1):
        line = raw[len(_BOM) :] if raw.startswith(_BOM) else raw
        if line.strip(b" \t\r"):
            records.append((number, line))
    likely: list[int] = []
    refused: dict[int, str | None] = {}
    for index, (_, line) in enumerate(records):
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            if "surrogate in string" in exc.msg:  # not "not valid UTF-8: surrogates ..."
                likely.append(index)
            else:
                refused[index] = None
            continue
        if isinstance(value, dict):
            likely.append(index)
        else:
            refused[index] = None
    frames, polars_refused = _bisect([records[i][1] for i in likely], schema)
    for at, error in polars_refused.items():
        refused[likely[at]] = error
    frame = pl.concat(frames, rechunk=False) if frames else pl.DataFrame(schema=schema)
    bad = [
        _BadLine(records[i][1], first_position + i, page, records[i][0], refused[i])
        for i in sorted(refused)
    ]
    return frame, bad


class ApiSmithClient:
    """A client of one APISmith server."""

    def __init__(
        self,
        base_url: str,
        token: str,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        page_size: int = MAX_PAGE,
    ) -> None:
        self._http = bearer_client(base_url, token, timeout, connections=4)
        self._url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.page_size = max(1, min(page_size, MAX_PAGE))

    def close(self) -> None:
        """Close the idle connections."""
        self._http.close()

    def __enter__(self) -> "ApiSmithClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, what: str, path: str, **kw: Any) -> httpx.Response:
        def once() -> httpx.Response:
            response = self._http.request("GET", path, **kw)
            check_response(SERVICE, TOKEN_SETTING, what, response)
            return response

        with upstream_call(SERVICE, "GET", self._url + path) as on_retry:
            return self.retry.call(f"{SERVICE} {what}", once, on_retry, mask_url(self._url + path))

    def entities(self) -> dict[str, SourceEntity]:
        """Every entity the ERP exposes, by name."""
        doc = json_body(SERVICE, "entity list", self._get("entity list", "/api/v1/entities"))
        out = {}
        for e in doc["entities"]:
            out[e["name"]] = SourceEntity(
                name=e["name"],
                key=tuple(e["key"]),
                rowversion=e["rowversion"],
                columns={c["name"]: c["type"] for c in e["columns"]},
            )
        return out

    def entity(self, name: str) -> SourceEntity:
        """One entity's description.

        Raises:
            ApiError: when APISmith does not expose it.
        """
        entities = self.entities()
        if name not in entities:
            raise ApiError(
                f"{SERVICE} exposes no entity '{name}' (it has: {', '.join(sorted(entities))})", 404
            )
        return entities[name]

    def count(self, entity: str, since_rowversion: int | None = None) -> tuple[int, int | None]:
        """How many rows there are above ``since_rowversion``, and the highest rowversion."""
        params = {} if since_rowversion is None else {"since_rowversion": since_rowversion}
        what = f"count of '{entity}'"
        doc = json_body(
            SERVICE, what, self._get(what, f"/api/v1/entities/{entity}/count", params=params)
        )
        return int(doc["count"]), doc.get("max_rowversion")

    def _pages(
        self,
        entity: str,
        since_rowversion: int | None,
        max_rows: int | None,
        cursor: str | None = None,
        reached: list[str | None] | None = None,
    ) -> Iterator[bytes]:
        """NDJSON page bodies, fetched one ahead of the consumer on a helper thread.

        Reading starts after ``cursor`` when given; ``reached`` receives the
        cursor after each page read (None once the data ended).
        """
        pages: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=2)
        stop = threading.Event()
        start = cursor

        def produce() -> None:
            cursor = start
            remaining = max_rows
            try:
                while not stop.is_set():
                    limit = self.page_size if remaining is None else min(self.page_size, remaining)
                    params: dict[str, Any] = {"limit": limit}
                    if cursor:
                        params["cursor"] = cursor
                    if since_rowversion is not None:
                        params["since_rowversion"] = since_rowversion
                    response = self._get(
                        f"records of '{entity}'",
                        f"/api/v1/entities/{entity}/records",
                        params=params,
                        headers={"Accept": "application/x-ndjson"},
                    )
                    cursor = response.headers.get("x-next-cursor")
                    if reached is not None:
                        reached.append(cursor)
                    pages.put(response.content)
                    if remaining is not None:
                        remaining -= response.content.count(b"\n") + (
                            0 if response.content.endswith(b"\n") or not response.content else 1
                        )
                    if not cursor or (remaining is not None and remaining <= 0):
                        break
                pages.put(None)
            except BaseException as exc:  # handed to the consumer, raised there
                pages.put(exc)

        thread = threading.Thread(target=produce, name=f"apismith-pages-{entity}", daemon=True)
        thread.start()
        try:
            while True:
                item = pages.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while thread.is_alive():
                with contextlib.suppress(queue.Empty):
                    pages.get(timeout=0.05)
            thread.join()

    def fetch(
        self,
        entity: str,
        columns: Sequence[str],
        since_rowversion: int | None = None,
        max_rows: int | None = None,
        *,
        key_columns: Sequence[str] = (),
        rowversion: str | None = None,
        cursor: str | None = None,
    ) -> FetchResult:
        """All records above ``since_rowversion`` (at most ``max_rows``), every column as text.

        Columns the ERP sends but ``columns`` does not name are not read. A line
        that is not a readable record goes to ``bad_lines`` instead, with the
        values of ``key_columns`` and ``rowversion`` as far as they can be found
        in it; it counts as a record for ``max_rows``. Reading starts after
        ``cursor`` when given (a cursor APISmith no longer accepts is dropped:
        reading then starts above ``since_rowversion``); ``next_cursor`` of the
        result resumes after the last record read.
        """
        if cursor is not None:
            try:
                return self._fetch(
                    entity, columns, since_rowversion, max_rows, key_columns, rowversion, cursor
                )
            except ApiError as exc:
                if exc.status != 400:
                    raise
                log.warning(
                    "%s refused the saved cursor of '%s' (%s); reading from rowversion %s on",
                    SERVICE,
                    entity,
                    exc,
                    since_rowversion,
                )
        return self._fetch(entity, columns, since_rowversion, max_rows, key_columns, rowversion)

    def _fetch(
        self,
        entity: str,
        columns: Sequence[str],
        since_rowversion: int | None,
        max_rows: int | None,
        key_columns: Sequence[str],
        rowversion: str | None,
        cursor: str | None = None,
    ) -> FetchResult:
        schema: dict[str, pl.DataType] = dict.fromkeys(columns, pl.String())
        frames = []
        bad: list[_BadLine] = []
        pages = 0
        records = 0
        reached: list[str | None] = []
        for body in self._pages(entity, since_rowversion, max_rows, cursor, reached):
            pages += 1
            if body and not body.isspace():  # isspace stops at the first non-space byte
                page = body[len(_BOM) :] if body.startswith(_BOM) else body
                try:
                    frame = pl.read_ndjson(io.BytesIO(page), schema=schema)
                except _READ_ERRORS:
                    frame, page_bad = _read_line_by_line(page, schema, pages, records)
                    bad += page_bad
                    records += len(page_bad)
                frames.append(frame)
                records += frame.height
        frame = pl.concat(frames, rechunk=False) if frames else pl.DataFrame(schema=schema)
        next_cursor = reached[-1] if reached else cursor
        # The row limit cut the fetch short, unless the last page said the data ended there.
        truncated = max_rows is not None and records >= max_rows and next_cursor is not None
        if max_rows is not None and records > max_rows:
            bad = [b for b in bad if b.position < max_rows]
            frame = frame.head(max_rows - len(bad))
            next_cursor = None  # the server's cursor is past rows cut off here
            truncated = True
        bad_lines = _bad_lines_frame(bad, _KeyFinder(key_columns, rowversion))
        return FetchResult(
            frame=frame,
            pages=pages,
            truncated=truncated,
            bad_lines=bad_lines,
            next_cursor=next_cursor if truncated else None,
        )

    def keys(self, entity: str, key_columns: Sequence[str]) -> pl.DataFrame:
        """The business keys of every row present now, one text column per key column."""
        parts: list[pl.DataFrame] = []
        cursor: str | None = None
        width = len(key_columns)
        while True:
            params: dict[str, Any] = {"limit": MAX_PAGE}
            if cursor:
                params["cursor"] = cursor
            what = f"keys of '{entity}'"
            page = json_body(
                SERVICE,
                what,
                self._get(what, f"/api/v1/entities/{entity}/keys", params=params),
                lambda body: pl.read_json(
                    io.BytesIO(body),
                    schema={"keys": pl.List(pl.List(pl.String)), "next_cursor": pl.String},
                ),
            )
            keys = page.select(pl.col("keys").explode()).drop_nulls()
            if keys.height:
                bad = keys.filter(pl.col("keys").list.len() != width).height
                if bad:
                    raise ApiError(
                        f"{SERVICE} keys of '{entity}': {bad} key(s) without {width} values"
                    )
                parts.append(
                    keys.select(pl.col("keys").list.to_struct(fields=list(key_columns))).unnest(
                        "keys"
                    )
                )
            cursor = page.item(0, "next_cursor")
            if not cursor:
                break
        if not parts:
            return pl.DataFrame(schema=dict.fromkeys(key_columns, pl.String()))
        return pl.concat(parts)
