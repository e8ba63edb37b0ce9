import io
import random

import polars as pl
import pytest

from syncflow_dagster.edges.apismith import (
    BAD_LINE_CHARS,
    BAD_LINE_SCHEMA,
    ApiSmithClient,
    BadLineCode,
)
from syncflow_dagster.edges.http import AuthError, NotFoundError
from syncflow_dagster.edges.retry import RetriesExhaustedError, RetryPolicy
from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.testing.apismith import ApiSmithHandle, running_apismith

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


# ---------------------------------------------------------------- lines that are not records

CLEAN = DatasetSpec(seed=7, work_orders=300, operations_per_order=0, bad_fraction=0)
WO_COLUMNS = ["WO_NO", "ITEM_NO", "ORDER_QTY", "STATUS", "NOTES", "ORA_ROWSCN"]
KEYED = {"key_columns": ["WO_NO"], "rowversion": "ORA_ROWSCN"}

# The seven kinds of bad line that used to fail the whole fetch, each with its code
# ({key} and {rv} stand for the row's key and rowversion).
BAD_LINES: dict[str, tuple[bytes, str]] = {
    "lone_surrogate": (b'{"WO_NO":"{key}","NOTES":"\\udfff","ORA_ROWSCN":{rv}}', "lone_surrogate"),
    "huge_number": (b'{"WO_NO":"{key}","ORDER_QTY":1e400,"ORA_ROWSCN":{rv}}', "non_finite_number"),
    "nan": (b'{"WO_NO":"{key}","ORDER_QTY":NaN,"ORA_ROWSCN":{rv}}', "non_finite_number"),
    "infinity": (b'{"WO_NO":"{key}","ORA_ROWSCN":{rv},"ORDER_QTY":Infinity}', "non_finite_number"),
    "invalid_utf8": (b'{"WO_NO":"{key}","NOTES":"caf\xe9","ORA_ROWSCN":{rv}}', "invalid_utf8"),
    "array_line": (b'["{key}", {rv}]', "not_an_object"),
    "truncated": (b'{"WO_NO":"{key}","ORA_ROWSCN":{rv},"NOTES":"cut sh', "truncated"),
}


def _served(api: ApiSmithHandle, index: int) -> tuple[str, int]:
    """Key and rowversion of the row served at ``index`` (0-based, in serving order)."""
    view, _ = api.dataset.views("work_orders")
    return str(view.keys[0][index]), int(view.rv[index])


def _sabotage(api: ApiSmithHandle, lines: dict[int, bytes]) -> dict[int, tuple[str, int]]:
    """Serve these lines at these positions; the rows' keys and rowversions by position."""
    rows = {index: _served(api, index) for index in lines}
    api.dataset.serve_raw_lines(
        "work_orders",
        {
            (rows[i][0],): line.replace(b"{key}", rows[i][0].encode()).replace(
                b"{rv}", str(rows[i][1]).encode()
            )
            for i, line in lines.items()
        },
    )
    return rows


@pytest.mark.parametrize("kind", list(BAD_LINES))
def test_a_bad_line_is_set_aside_and_every_other_record_goes_on(kind: str) -> None:
    template, code = BAD_LINES[kind]
    with running_apismith(CLEAN) as api, ApiSmithClient(api.url, api.token, page_size=40) as client:
        clean = client.fetch("work_orders", WO_COLUMNS, **KEYED)
        assert clean.bad_lines.height == 0 and clean.bad_lines.schema == BAD_LINE_SCHEMA
        [(key, rv)] = _sabotage(api, {57: template}).values()
        result = client.fetch("work_orders", WO_COLUMNS, **KEYED)
    expected = clean.frame.filter(pl.int_range(pl.len()) != 57)
    assert result.frame.equals(expected)
    assert not result.truncated and result.pages == clean.pages
    [bad] = result.bad_lines.to_dicts()
    assert bad["code"] == code and bad["position"] == 57
    assert "line 18 of page 2 (record 57 of the fetch)" in bad["detail"]
    assert bad["line"].startswith(("{", "[")) and key in bad["line"]
    if kind == "array_line":  # nothing says which value is the key
        assert bad["source_key"] == '{"WO_NO":null}' and bad["rowversion"] is None
    else:
        assert bad["source_key"] == f'{{"WO_NO":"{key}"}}' and bad["rowversion"] == rv


def test_bad_lines_across_pages_keep_their_positions_and_the_records_their_order() -> None:
    lines = {
        0: BAD_LINES["nan"][0],  # the first line of the fetch
        39: BAD_LINES["truncated"][0],  # the last line of page 1
        40: b"\xef\xbb\xbf" + b'{"WO_NO":"{key}","ORA_ROWSCN":{rv}}',  # a BOM before a record
        41: b"\x0c",  # not blank to read_ndjson: a bad line
        299: BAD_LINES["array_line"][0],  # the very last line
    }
    with running_apismith(CLEAN) as api, ApiSmithClient(api.url, api.token, page_size=40) as client:
        clean = client.fetch("work_orders", WO_COLUMNS, **KEYED).frame
        rows = _sabotage(api, lines)
        result = client.fetch("work_orders", WO_COLUMNS, **KEYED)
    bad = result.bad_lines
    assert bad["position"].to_list() == [0, 39, 41, 299]
    assert bad["code"].to_list() == [
        "non_finite_number",
        "truncated",
        "unreadable_json",
        "not_an_object",
    ]
    assert bad["source_key"].to_list()[:2] == [f'{{"WO_NO":"{rows[i][0]}"}}' for i in (0, 39)]
    kept = [i for i in range(clean.height) if i not in {0, 39, 41, 299}]
    assert result.frame["WO_NO"].to_list() == clean["WO_NO"].gather(kept).to_list()
    bom_row = result.frame.filter(pl.col("WO_NO") == rows[40][0])
    assert bom_row["ORA_ROWSCN"].to_list() == [str(rows[40][1])]
    assert bom_row["ITEM_NO"].to_list() == [None]  # exactly the line that was sent


def test_max_rows_counts_bad_lines_as_rows_read() -> None:
    with running_apismith(CLEAN) as api, ApiSmithClient(api.url, api.token, page_size=40) as client:
        clean = client.fetch("work_orders", ["WO_NO"]).frame
        _sabotage(api, {5: BAD_LINES["nan"][0], 50: BAD_LINES["truncated"][0]})
        short = client.fetch("work_orders", ["WO_NO"], max_rows=30)
        longer = client.fetch("work_orders", ["WO_NO"], max_rows=120)
        everything = client.fetch("work_orders", ["WO_NO"], max_rows=400)
    assert (
        short.truncated
        and short.frame.height == 29
        and short.bad_lines["position"].to_list() == [5]
    )
    assert (
        short.frame["WO_NO"].to_list()
        == clean["WO_NO"].head(30).to_list()[:5] + clean["WO_NO"].slice(6, 24).to_list()
    )
    assert longer.truncated and longer.frame.height == 118 and longer.bad_lines.height == 2
    assert not everything.truncated and everything.frame.height == 298


def test_a_page_read_line_by_line_gives_the_records_the_one_go_read_gives() -> None:
    # Values read_ndjson takes without a word: the slow path must take them the same way.
    quiet = [
        b'{"WO_NO":"{key}","NOTES":"ab\\ud800cd","ORA_ROWSCN":{rv}}',  # lone high surrogate
        b'{"WO_NO":"{key}","NOTES":["a","b"],"STATUS":{"k":1},"ORA_ROWSCN":{rv}}',  # nested
        b'{"WO_NO":"{key}","STATUS":"FIRST","STATUS":"SECOND","ORA_ROWSCN":{rv}}',  # repeated
        b'{"WO_NO":"{key}","ORDER_QTY":1e-400,"ITEM_NO":123456789012345678901234567890,'
        b'"ORA_ROWSCN":{rv}}',
        b'{"WO_NO":"{key}","NOTES":"\\ufeff\\u0000","ORA_ROWSCN":{rv},"EXTRA":[NaN]}',
    ]
    with running_apismith(CLEAN) as api, ApiSmithClient(api.url, api.token, page_size=40) as client:
        _sabotage(api, {10 + i: line for i, line in enumerate(quiet)})
        one_go = client.fetch("work_orders", WO_COLUMNS, **KEYED)
        _sabotage(api, {30: BAD_LINES["lone_surrogate"][0]})  # now page 1 needs the slow path
        line_by_line = client.fetch("work_orders", WO_COLUMNS, **KEYED)
    assert one_go.bad_lines.height == 1  # [NaN] in a column nobody reads still breaks the line
    assert line_by_line.bad_lines["position"].to_list() == [14, 30]
    expected = one_go.frame.filter(pl.int_range(pl.len()) != 29)  # 30 minus the line at 14
    assert line_by_line.frame.equals(expected)
    read = line_by_line.frame.slice(10, 4)
    assert read["NOTES"].to_list()[:2] == ["ab\x00cd", '["a", "b"]']
    assert read["STATUS"].to_list()[1:3] == ['{"k": 1}', "FIRST"]
    assert read.row(3, named=True)["ORDER_QTY"] == "0"


def test_a_long_bad_line_is_cut_and_says_so() -> None:
    line = b'{"WO_NO":"{key}","ORA_ROWSCN":{rv},"NOTES":"' + b"x" * 20_000 + b'", NaN}'
    with running_apismith(CLEAN) as api, ApiSmithClient(api.url, api.token) as client:
        [(key, _)] = _sabotage(api, {3: line}).values()
        [bad] = client.fetch("work_orders", ["WO_NO"], **KEYED).bad_lines.to_dicts()
    assert len(bad["line"]) == BAD_LINE_CHARS
    assert "10000 are kept" in bad["detail"] and bad["source_key"] == f'{{"WO_NO":"{key}"}}'


class _Pages(ApiSmithClient):
    """A client over given page bodies instead of a server (for what paging does not matter)."""

    def __init__(self, bodies: list[bytes]) -> None:
        super().__init__("http://127.0.0.1:9", "unused")
        self.bodies = bodies

    def _pages(self, entity, since_rowversion, max_rows, cursor=None, reached=None):  # type: ignore[no-untyped-def]
        yield from self.bodies


def _mutated_lines(count: int, seed: int) -> list[bytes]:
    """Work-order-like lines, many broken by random edits of JSON-ish bytes."""
    rnd = random.Random(seed)
    alphabet = list(b'{}[]":,\\u0123456789abcdefABCDEFeE+-.ntrfl sNI\t\x00\x7f\xff\xc3\xa9\xed')
    lines = []
    for i in range(count):
        line = bytearray(
            b'{"K":"K%d","N":"x\\u00e9\\ud83d\\ude00","Q":12.5,"L":[1,{"q":true}],"R":%d}' % (i, i)
        )
        for _ in range(rnd.choice([0, 0, 1, 2, 3])):
            at = rnd.randrange(len(line) + 1)
            edit = rnd.random()
            if edit < 0.4:
                line[at:at] = bytes([rnd.choice(alphabet)])
            elif at < len(line):
                if edit < 0.7:
                    del line[at]
                else:
                    line[at] = rnd.choice(alphabet)
        lines.append(bytes(line).replace(b"\n", b" "))
    return lines


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_line_by_line_agrees_with_read_ndjson_on_every_line(seed: int) -> None:
    lines = [line for line in _mutated_lines(300, seed) if line.strip(b" \t\r")]
    schema = dict.fromkeys(["K", "N", "Q", "L", "R"], pl.String())
    accepted, refused = [], []
    for position, line in enumerate(lines):
        try:
            accepted.append(pl.read_ndjson(io.BytesIO(line), schema=schema))
        except pl.exceptions.ComputeError:
            refused.append(position)
    assert refused and len(accepted) > 100  # both kinds, plenty of each
    bodies = [b"\n".join(lines[at : at + 64]) for at in range(0, len(lines), 64)]
    result = _Pages(bodies).fetch("x", list(schema), key_columns=["K"], rowversion="R")
    assert result.bad_lines["position"].to_list() == refused
    assert result.frame.equals(pl.concat(accepted))
    assert result.bad_lines["code"].is_in([c.value for c in BadLineCode]).all()
    assert result.bad_lines["detail"].str.contains(r"of line \d+ of page \d+").all()


def test_a_fetch_cut_short_resumes_exactly_after_its_last_record() -> None:
    with running_apismith(SPEC) as api, ApiSmithClient(api.url, api.token, page_size=7) as client:
        columns = ["WO_NO", "ORA_ROWSCN"]
        whole = client.fetch("work_orders", columns).frame
        first = client.fetch("work_orders", columns, max_rows=30)
        assert first.truncated and first.next_cursor
        rest = client.fetch("work_orders", columns, cursor=first.next_cursor)
        assert rest.next_cursor is None  # read to the end
        assert pl.concat([first.frame, rest.frame]).equals(whole)  # no gap, no overlap


def test_a_cursor_the_server_refuses_falls_back_to_the_rowversion() -> None:
    with running_apismith(SPEC) as api, ApiSmithClient(api.url, api.token) as client:
        columns = ["WO_NO", "ORA_ROWSCN"]
        whole = client.fetch("work_orders", columns).frame
        since = int(whole.item(99, "ORA_ROWSCN"))
        resumed = client.fetch("work_orders", columns, since_rowversion=since, cursor="not-ours")
        assert resumed.frame.equals(whole.slice(100))
