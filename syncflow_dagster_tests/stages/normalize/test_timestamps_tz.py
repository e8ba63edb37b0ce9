from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncflow_dagster_tests.stages.normalize.helpers import (
    code_of,
    fast_and_slow,
    mutations,
    one,
    run_column,
)


def utc(*parts: int) -> datetime:
    """``datetime(*parts)`` in UTC."""
    return datetime(*parts).replace(tzinfo=UTC)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-26 14:03:00.123456 +01:00", utc(2026, 11, 26, 13, 3, 0, 123456)),
        ("2026-11-26 14:03:00 +01:00", utc(2026, 11, 26, 13, 3)),
        ("2026-11-26 14:03:00.5 -05:30", utc(2026, 11, 26, 19, 33, 0, 500000)),
        ("2026-11-26T14:03:00+01:00", utc(2026, 11, 26, 13, 3)),
        ("2026-11-26T14:03:00+0100", utc(2026, 11, 26, 13, 3)),
        ("2026-11-26T14:03:00+01", utc(2026, 11, 26, 13, 3)),
        ("2026-11-26T14:03:00Z", utc(2026, 11, 26, 14, 3)),
        ("2026-11-26T14:03:00z", utc(2026, 11, 26, 14, 3)),
        ("2026-11-26T14:03:00.123Z", utc(2026, 11, 26, 14, 3, 0, 123000)),
        ("2026-11-26T14:03:00,5Z", utc(2026, 11, 26, 14, 3, 0, 500000)),
        ("2026-11-26T14:03:00.123456789+00:00", utc(2026, 11, 26, 14, 3, 0, 123456)),
        ("2026-11-26 14:03:00.123456+01:00", utc(2026, 11, 26, 13, 3, 0, 123456)),
        (" 2026-11-26T14:03:00Z ", utc(2026, 11, 26, 14, 3)),
        ("2026-03-29 02:30:00 +01:00", utc(2026, 3, 29, 1, 30)),
    ],
)
def test_timestamp_with_time_zone_forms(raw: str, expected: datetime) -> None:
    assert one("TIMESTAMP WITH TIME ZONE", raw) == expected
    assert one("TIMESTAMP(6) WITH TIME ZONE", raw) == expected


def test_timestamp_with_time_zone_null() -> None:
    assert run_column("TIMESTAMP WITH TIME ZONE", ["", None]) == [(None, None)] * 2


@pytest.mark.parametrize(
    "raw",
    [
        "2026-11-26 14:03:00",
        "2026-11-26",
        "26-NOV-26",
        "2026-02-30T10:00:00Z",
        "2026-11-26T14:03:00+25:00",
        "2026-11-26T14:03:00+01:60",
        "2026-11-26T14:03:00 CET",
        "2026-11-26T14:03Z",
        "2026-11-26 14:03:00.1234567890 +01:00",
        "2026-11-26 14:03:00X123456 +01:00",
        "2026-11-26 14:03:00.12x456 +01:00",
        "2026-11-26 14:03:00.123456 +01:0x",
        "0000-06-01 00:00:00.000000 +00:00",
        "0000-06-01T00:00:00Z",
        "x",
    ],
)
def test_timestamp_unreadable(raw: str) -> None:
    assert code_of("TIMESTAMP WITH TIME ZONE", raw) == "timestamp_unreadable"


@settings(max_examples=150, deadline=None)
@given(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)),
    st.integers(-14 * 60, 14 * 60),
    st.sampled_from(["space", "iso", "iso_basic", "z"]),
)
def test_any_instant_round_trips_through_timestamp_tz_forms(
    moment: datetime, offset_minutes: int, style: str
) -> None:
    offset = timedelta(minutes=offset_minutes)
    sign = "-" if offset_minutes < 0 else "+"
    hh, mm = divmod(abs(offset_minutes), 60)
    fraction = f".{moment.microsecond:06d}" if moment.microsecond else ""
    wall = moment.strftime("%Y-%m-%d %H:%M:%S")
    match style:
        case "space":
            text = f"{wall}{fraction} {sign}{hh:02d}:{mm:02d}"
        case "iso":
            text = f"{wall.replace(' ', 'T')}{fraction}{sign}{hh:02d}:{mm:02d}"
        case "iso_basic":
            text = f"{wall.replace(' ', 'T')}{fraction}{sign}{hh:02d}{mm:02d}"
        case _:
            offset = timedelta(0)
            text = f"{wall.replace(' ', 'T')}{fraction}Z"
    expected = (moment - offset).replace(tzinfo=UTC)
    assert one("TIMESTAMP WITH TIME ZONE", text) == expected


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet="0123456789-: TZz.,+", max_size=36), min_size=1, max_size=20))
def test_fast_path_agrees_with_the_exact_reader(texts: list[str]) -> None:
    canonical = [f"2026-11-26 14:03:00.{i:06d} +01:00" for i in range(3)]
    moments = [str(datetime(2026, 1, 1) + timedelta(seconds=i * 977_777.7)) for i in range(40)]
    texts = [*texts, *canonical, *(t + " +01:00" for t in texts + moments)]
    for text, (settled, fast, slow, code) in zip(
        texts, fast_and_slow("TIMESTAMP WITH TIME ZONE", texts), strict=True
    ):
        if settled:
            assert code is None, f"{text!r}: fast path took what the reader refuses ({code})"
            assert fast == slow, f"{text!r}: fast {fast!r} != exact {slow!r}"


@pytest.mark.parametrize(
    "type_text",
    [
        "TIMESTAMP(0) WITH TIME ZONE",
        "TIMESTAMP(3) WITH TIME ZONE",
        "TIMESTAMP(9) WITH TIME ZONE",
        "TIMESTAMP WITH TIME ZONE",
    ],
)
def test_every_fraction_length_reads_the_same_whatever_the_declared_precision(
    type_text: str,
) -> None:
    texts = [
        "2026-11-26 14:03:00 +01:00",
        "2026-11-26 14:03:00.5 +01:00",
        "2026-11-26 14:03:00.123 -01:30",
        "2026-11-26 14:03:00.123456 +01:00",
        "2026-11-26 14:03:00.123456789 +14:00",
    ]
    assert [value for value, _ in run_column(type_text, texts)] == [
        utc(2026, 11, 26, 13, 3),
        utc(2026, 11, 26, 13, 3, 0, 500000),
        utc(2026, 11, 26, 15, 33, 0, 123000),
        utc(2026, 11, 26, 13, 3, 0, 123456),
        utc(2026, 11, 26, 0, 3, 0, 123456),
    ]
    for settled, fast, slow, code in fast_and_slow(
        type_text, [*texts, "2026-11-26 14:03:00.12 +99:00"]
    ):
        if settled:
            assert (fast, code) == (slow, None)


@pytest.mark.parametrize(
    ("type_text", "text"),
    [
        ("TIMESTAMP WITH TIME ZONE", "2026-11-26 14:03:00.123456 +01:00"),
        ("TIMESTAMP WITH TIME ZONE", "0001-01-01 00:30:00.000000 +01:00"),
        ("TIMESTAMP(3) WITH TIME ZONE", "2026-10-25 02:30:00.001 -05:30"),
        ("TIMESTAMP(0) WITH TIME ZONE", "2026-11-26 14:03:00 +01:00"),
    ],
)
def test_near_misses_of_the_fast_form_are_never_misread(type_text: str, text: str) -> None:
    near = mutations(text)
    for candidate, (settled, fast, slow, code) in zip(
        near, fast_and_slow(type_text, near), strict=True
    ):
        if settled:
            assert (fast, code) == (slow, None), candidate
