"""A corpus of bad ERP input: every case ends known — never a crash, never a silent change.

Each case is a line or a value the ERP might send, and what must become of it:

* ``dead_letter`` — the record is failed with ``expected = (stage, code)``;
* ``normalization`` — the record goes on, with the documented value
  ``expected = (column, value)`` (``"{key}"`` stands for the row's key);
* ``clear_error`` — SyncFlow refuses to start with ``expected = (error type, message)``.

Lines and values go the real way: the APISmith emulator serves each case as one
work order's NDJSON line over loopback HTTP, the client fetches the entity, and
the stages read what came — fetch (bad lines), normalize, validate — with the
shipped work_orders configuration. docs/NORMALIZATION.md documents every code
and every normalization named here.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import orjson
import polars as pl
import pytest

from syncflow_dagster.config.loader import parse_entity_file
from syncflow_dagster.edges.apismith import ApiSmithClient
from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.paths import ENTITIES_DIR
from syncflow_dagster.stages.dead_letters import dead_letters, unreadable_letters
from syncflow_dagster.stages.failures import ROW
from syncflow_dagster.stages.identity import bk_hash_expr
from syncflow_dagster.stages.normalize import ColumnSpec, normalize
from syncflow_dagster.stages.validate import validate
from syncflow_dagster.testing.apismith import running_apismith

Outcome = Literal["dead_letter", "normalization", "clear_error"]


@dataclass(frozen=True)
class Case:
    """One bad input and what must become of it.

    Attributes:
        name: what the input is.
        input: with ``column`` unset, a whole NDJSON line (``{key}``, ``{rv}`` and
            ``{line}`` stand for the row's key, rowversion and own line); with
            ``column`` set, the raw JSON text of that column's value; for a
            ``clear_error``, the Oracle type the ERP describes a column with.
        outcome_kind: ``dead_letter``, ``normalization`` or ``clear_error``.
        expected: ``(stage, code)``, ``(column, value)`` or ``(error type, message)``.
        column: the column whose value ``input`` is.
    """

    name: str
    input: str | bytes
    outcome_kind: Outcome
    expected: tuple[Any, ...]
    column: str | None = None


def _line(name: str, line: str | bytes, stage: str, code: str) -> Case:
    return Case(name, line, "dead_letter", (stage, code))


def _value(name: str, column: str, raw: str | bytes, outcome: Outcome, *expected: Any) -> Case:
    return Case(name, raw, outcome, tuple(expected), column)


CASES: list[Case] = [
    # Lines that are not a readable record: the fetch sets them aside.
    _line(
        "lone low surrogate",
        r'{"WO_NO":"{key}","NOTES":"\udfff","ORA_ROWSCN":{rv}}',
        "fetch",
        "lone_surrogate",
    ),
    _line(
        "high surrogate twice",
        r'{"WO_NO":"{key}","NOTES":"\ud800\ud800","ORA_ROWSCN":{rv}}',
        "fetch",
        "lone_surrogate",
    ),
    _line(
        "number beyond the float range",
        '{"WO_NO":"{key}","ORDER_QTY":1e400,"ORA_ROWSCN":{rv}}',
        "fetch",
        "non_finite_number",
    ),
    _line(
        "negative number beyond the float range",
        '{"WO_NO":"{key}","ORDER_QTY":-1e400,"ORA_ROWSCN":{rv}}',
        "fetch",
        "non_finite_number",
    ),
    _line(
        "bare NaN",
        '{"WO_NO":"{key}","ORDER_QTY":NaN,"ORA_ROWSCN":{rv}}',
        "fetch",
        "non_finite_number",
    ),
    _line(
        "bare Infinity",
        '{"WO_NO":"{key}","ORA_ROWSCN":{rv},"ORDER_QTY":Infinity}',
        "fetch",
        "non_finite_number",
    ),
    _line(
        "bare -Infinity",
        '{"WO_NO":"{key}","ORDER_QTY":-Infinity,"ORA_ROWSCN":{rv}}',
        "fetch",
        "non_finite_number",
    ),
    _line(
        "Latin-1 byte, not UTF-8",
        b'{"WO_NO":"{key}","NOTES":"caf\xe9","ORA_ROWSCN":{rv}}',
        "fetch",
        "invalid_utf8",
    ),
    _line(
        "UTF-8-encoded surrogate (CESU-8)",
        b'{"WO_NO":"{key}","NOTES":"\xed\xa0\x80","ORA_ROWSCN":{rv}}',
        "fetch",
        "invalid_utf8",
    ),
    _line("line is a JSON array", '["{key}", {rv}]', "fetch", "not_an_object"),
    _line("line is a JSON string", '"{key}"', "fetch", "not_an_object"),
    _line("line is null", "null", "fetch", "not_an_object"),
    _line(
        "line cut short",
        '{"WO_NO":"{key}","ORA_ROWSCN":{rv},"NOTES":"half a no',
        "fetch",
        "truncated",
    ),
    _line(
        "raw tab inside a string",
        '{"WO_NO":"{key}","NOTES":"a\tb","ORA_ROWSCN":{rv}}',
        "fetch",
        "unreadable_json",
    ),
    _line(
        "unknown escape",
        r'{"WO_NO":"{key}","NOTES":"a\qb","ORA_ROWSCN":{rv}}',
        "fetch",
        "unreadable_json",
    ),
    _line(
        "content after the record",
        '{"WO_NO":"{key}","ORA_ROWSCN":{rv}} ,',
        "fetch",
        "unreadable_json",
    ),
    _line("single-quoted JSON", "{'WO_NO':'{key}','ORA_ROWSCN':{rv}}", "fetch", "unreadable_json"),
    _line("trailing comma", '{"WO_NO":"{key}","ORA_ROWSCN":{rv},}', "fetch", "unreadable_json"),
    _line("form feed alone on a line", "\x0c", "fetch", "unreadable_json"),
    # Values the fetch reads without a word: the normalizer or validator fails the record.
    _value(
        "lone high surrogate (read as NUL)",
        "NOTES",
        r'"ab\ud800cd"',
        "dead_letter",
        "normalize",
        "string_nul",
    ),
    _value(
        "NUL escape in text", "NOTES", r'"ab\u0000cd"', "dead_letter", "normalize", "string_nul"
    ),
    _value(
        "JSON array as a text value",
        "NOTES",
        '["a", "b"]',
        "dead_letter",
        "normalize",
        "value_not_scalar",
    ),
    _value(
        "JSON object as a text value",
        "STATUS",
        '{"code": "RELEASED"}',
        "dead_letter",
        "normalize",
        "value_not_scalar",
    ),
    _value(
        "JSON array as a number",
        "ORDER_QTY",
        "[1, 2]",
        "dead_letter",
        "normalize",
        "value_not_scalar",
    ),
    _value("empty array as a key", "WO_NO", "[]", "dead_letter", "normalize", "value_not_scalar"),
    _value(
        "null rowversion", "ORA_ROWSCN", "null", "dead_letter", "validate", "rowversion_missing"
    ),
    _value(
        "empty-text rowversion", "ORA_ROWSCN", '""', "dead_letter", "validate", "rowversion_missing"
    ),
    _value(
        "unreadable rowversion",
        "ORA_ROWSCN",
        '"abc"',
        "dead_letter",
        "normalize",
        "number_unreadable",
    ),
    _value(
        "fractional rowversion",
        "ORA_ROWSCN",
        "12.5",
        "dead_letter",
        "normalize",
        "number_scale_exceeded",
    ),
    _value(
        "boolean as a date", "START_DATE", "true", "dead_letter", "normalize", "date_unreadable"
    ),
    _line("empty object", "{}", "validate", "key_missing"),
    # Values with a documented normalization.
    _value(
        "BOM escape before the key", "WO_NO", r'"\ufeff{key}"', "normalization", "WO_NO", "{key}"
    ),
    _value(
        "UTF-8 BOM bytes after the key",
        "WO_NO",
        b'"{key}\xef\xbb\xbf"',
        "normalization",
        "WO_NO",
        "{key}",
    ),
    Case("BOM before the record", b"\xef\xbb\xbf{line}", "normalization", ("WO_NO", "{key}")),
    _value(
        "repeated JSON key: the first wins",
        "STATUS",
        '"RELEASED","STATUS":"CLOSED"',
        "normalization",
        "STATUS",
        "RELEASED",
    ),
    _value(
        "number below the float range", "ORDER_QTY", "1e-400", "normalization", "ORDER_QTY", 0.0
    ),
    _value(
        "more digits than a 64-bit float holds",
        "ORDER_QTY",
        "0.1000000000000000055511151231257827",
        "normalization",
        "ORDER_QTY",
        0.1,
    ),
    _value("JSON true as text", "NOTES", "true", "normalization", "NOTES", "true"),
    _value("JSON number as text", "ITEM_NO", "12", "normalization", "ITEM_NO", "12"),
    # Column types the ERP may describe that SyncFlow cannot read: refused before any run.
    Case("CLOB column", "CLOB", "clear_error", (ValueError, "unknown Oracle type 'CLOB'")),
    Case("NUMBER of no digits", "NUMBER(0)", "clear_error", (ValueError, r"NUMBER\(0\)")),
    Case("VARCHAR2 without a length", "VARCHAR2", "clear_error", (ValueError, "VARCHAR2")),
]

ENTITY = parse_entity_file(ENTITIES_DIR / "work_orders.yaml")
SPEC = DatasetSpec(seed=5, work_orders=250, operations_per_order=0, bad_fraction=0)
ROWS = [case for case in CASES if case.outcome_kind != "clear_error"]
#: Where case i is served: spread over the first pages, away from each other.
POSITIONS = {case.name: 3 + 5 * i for i, case in enumerate(ROWS)}


@dataclass(frozen=True)
class Result:
    """What became of one served row."""

    key: str
    stage: str | None = None
    code: str | None = None
    detail: str | None = None
    values: dict[str, Any] | None = None


def _fill(template: str | bytes, key: str, rv: int, line: bytes) -> bytes:
    text = template.encode() if isinstance(template, str) else template
    return (
        text.replace(b"{key}", key.encode())
        .replace(b"{rv}", str(rv).encode())
        .replace(b"{line}", line)
    )


def _served_line(case: Case, line: bytes, key: str, rv: int) -> bytes:
    """The line the emulator serves for ``case`` instead of the row's own ``line``."""
    if case.column is None:
        return _fill(case.input, key, rv, line)
    record = orjson.loads(line)
    parts = [
        orjson.dumps(name)
        + b":"
        + (_fill(case.input, key, rv, line) if name == case.column else orjson.dumps(value))
        for name, value in record.items()
    ]
    return b"{" + b",".join(parts) + b"}"


def _run_cases() -> tuple[dict[str, Result], int, pl.DataFrame]:
    """Serve every case, fetch, and read what came; also the letters made."""
    columns = list(ENTITY.read_columns)
    key, rowversion = list(ENTITY.source.key), ENTITY.source.rowversion
    with running_apismith(SPEC) as api:
        view, _ = api.dataset.views("work_orders")
        served: dict[int, tuple[str, bytes]] = {}
        for case in ROWS:
            at = POSITIONS[case.name]
            row_key, rv = str(view.keys[0][at]), int(view.rv[at])
            served[at] = (row_key, _served_line(case, view.lines[at].encode(), row_key, rv))
        api.dataset.serve_raw_lines("work_orders", {(k,): line for k, line in served.values()})
        with ApiSmithClient(api.url, api.token, page_size=50) as client:
            types = client.entity("work_orders").columns
            fetched = client.fetch("work_orders", columns, key_columns=key, rowversion=rowversion)
    total = fetched.frame.height + fetched.bad_lines.height
    keys = {at: k for at, (k, _) in served.items()}
    results: dict[int, Result] = {}
    for bad in fetched.bad_lines.to_dicts():
        at = bad["position"]
        results[at] = Result(keys.get(at, "?"), "fetch", bad["code"], bad["detail"])
    good = sorted(set(range(total)) - set(results))
    raw = fetched.frame.with_columns(pl.Series(ROW, good, dtype=pl.UInt32))
    specs = [ColumnSpec(name, types[name]) for name in columns]
    normalized = normalize(raw, specs, ENTITY.source.timezone or "Europe/Berlin")
    valid, invalid = validate(normalized.frame, ENTITY)
    for stage, failures in (("normalize", normalized.failures), ("validate", invalid)):
        for failure in failures.to_dicts():
            at = failure[ROW]
            results[at] = Result(keys.get(at, "?"), stage, failure["code"], failure["detail"])
    for row in valid.with_columns(bk_hash_expr(ENTITY.name, key, valid.schema)).to_dicts():
        results[row[ROW]] = Result(keys.get(row[ROW], "?"), values=row)
    letters = pl.concat(
        [
            unreadable_letters(fetched.bad_lines),
            dead_letters("normalize", normalized.failures, raw, key, rowversion),
            dead_letters("validate", invalid, raw, key, rowversion, normalized=normalized.frame),
        ]
    )
    by_case = {case.name: results[POSITIONS[case.name]] for case in ROWS}
    untouched = [results[at] for at in range(total) if at not in served]
    assert all(r.values is not None for r in untouched), "a case hurt a row it did not touch"
    return by_case, total, letters


@pytest.fixture(scope="module")
def outcomes() -> Iterator[tuple[dict[str, Result], int, pl.DataFrame]]:
    """What became of every case, from one fetch of the sabotaged entity."""
    yield _run_cases()


def test_the_corpus_is_big_and_well_formed() -> None:
    assert len(CASES) >= 20
    assert len({case.name for case in CASES}) == len(CASES)
    assert {case.outcome_kind for case in CASES} == {"dead_letter", "normalization", "clear_error"}
    assert max(POSITIONS.values()) < SPEC.work_orders


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_erp_input_ends_as_documented(
    case: Case, outcomes: tuple[dict[str, Result], int, pl.DataFrame]
) -> None:
    if case.outcome_kind == "clear_error":
        error, message = case.expected
        with pytest.raises(error, match=message):
            ColumnSpec("NOTES", str(case.input))
        return
    results, _, letters = outcomes
    got = results[case.name]
    if case.outcome_kind == "dead_letter":
        stage, code = case.expected
        assert (got.stage, got.code) == (stage, code), got
        assert got.detail, "a dead letter says what is wrong"
        letter = letters.filter((pl.col("stage") == stage) & (pl.col("code") == code))
        assert letter.height >= 1 and letter["raw"].is_not_null().all()
    else:
        column, value = case.expected
        assert got.values is not None, f"{case.name}: failed at {got.stage} with {got.code}"
        expected = value.replace("{key}", got.key) if isinstance(value, str) else value
        assert got.values[column] == expected


def test_a_bom_does_not_change_the_business_key_hash(
    outcomes: tuple[dict[str, Result], int, pl.DataFrame],
) -> None:
    results, _, _ = outcomes
    for name in ("BOM escape before the key", "UTF-8 BOM bytes after the key"):
        got = results[name]
        assert got.values is not None
        clean = pl.DataFrame({"WO_NO": [got.key]})
        expected = clean.select(bk_hash_expr(ENTITY.name, ["WO_NO"], clean.schema)).item()
        assert got.values["bk_hash"] == expected


def test_every_served_line_is_accounted_for(
    outcomes: tuple[dict[str, Result], int, pl.DataFrame],
) -> None:
    _, total, letters = outcomes
    assert total == SPEC.work_orders
    failed = sum(1 for case in ROWS if case.outcome_kind == "dead_letter")
    assert letters.height == failed
    assert letters.filter(pl.col("stage") == "fetch").height == sum(
        1 for case in ROWS if case.expected[0] == "fetch"
    )
