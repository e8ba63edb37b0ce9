from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncflow_dagster_tests.stages.normalize.helpers import (
    ZONE,
    code_of,
    fast_and_slow,
    mutations,
    one,
    run_column,
)

BERLIN = ZoneInfo(ZONE)


def utc(*parts: int) -> datetime:
    """``datetime(*parts)`` in UTC."""
    return datetime(*parts).replace(tzinfo=UTC)  # type: ignore[arg-type]


def local_to_utc(naive: datetime, zone: ZoneInfo = BERLIN) -> datetime:
    """The UTC instant of an ERP wall-clock time by PEP 495 with fold=0 (the reference rule):
    the earlier instant if ambiguous, the pre-transition offset inside a gap."""
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("26-NOV-26", utc(2026, 11, 25, 23)),
        ("26-NOV-2026", utc(2026, 11, 25, 23)),
        ("2026-11-26", utc(2026, 11, 25, 23)),
        ("2026-11-26 14:03:00", utc(2026, 11, 26, 13, 3)),
        ("2026-11-26T14:03:00", utc(2026, 11, 26, 13, 3)),
        ("20261126", utc(2026, 11, 25, 23)),
        ("26-nov-26", utc(2026, 11, 25, 23)),
        ("26-Nov-2026", utc(2026, 11, 25, 23)),
        (" 2026-07-06 ", utc(2026, 7, 5, 22)),
    ],
)
def test_date_forms(raw: str, expected: datetime) -> None:
    assert one("DATE", raw) == expected


@pytest.mark.parametrize(
    ("raw", "year"),
    [("01-JAN-00", 2000), ("01-JAN-49", 2049), ("01-JAN-50", 1950), ("31-DEC-99", 1999)],
)
def test_rr_years(raw: str, year: int) -> None:
    assert one("DATE", raw, zone="UTC").year == year


def test_date_in_other_zones() -> None:
    assert one("DATE", "2026-11-26 14:03:00", zone="UTC") == utc(2026, 11, 26, 14, 3)
    assert one("DATE", "2026-11-26", zone="America/New_York") == utc(2026, 11, 26, 5)


def test_empty_and_null_dates_are_null() -> None:
    assert run_column("DATE", ["", " ", None]) == [(None, None)] * 3
    assert run_column("TIMESTAMP", ["", None]) == [(None, None)] * 2


@pytest.mark.parametrize(
    "raw",
    [
        "31-FEB-26",
        "2026-13-45",
        "2026-02-29",
        "29-FEB-2025",
        "00-NOV-26",
        "20261345",
        "20260230",
        "2026-11-26 25:00:00",
        "2026-11-26 14:60:00",
        "2026-11-26T14:03:61",
        "0000-01-01",
        "00000101",
        "01-JAN-0000",
        "00000000",
    ],
)
def test_date_invalid(raw: str) -> None:
    assert code_of("DATE", raw) == "date_invalid"


@pytest.mark.parametrize(
    "raw",
    [
        "26/11/2026",
        "Nov 26, 2026",
        "2026-11-26 14:03",
        "6-JUL-2026",
        "2026-1-26",
        "2026-11-26 4:03:00",
        "226-11-26 14:03:00",
        "+2026-11-26 14:03:00",
        "2026-11-2614:03:00",
        "2026-11-26  14:03:00",
        "2026-11-26T14:03:00Z",
        "2026-11-26 14:03:00 +01:00",
        "2026-11-26 14:03:00.5",
        "26-FOO-26",
        "26-NOVEMBER-26",
        "26-NOV-026",
        "2026112",
        "202611260",
        "x",
        "٢٠٢٦-١١-٢٦",
    ],
)
def test_date_unreadable(raw: str) -> None:
    assert code_of("DATE", raw) == "date_unreadable"


def test_spring_forward_gap_takes_the_offset_before_it() -> None:
    # 02:00-03:00 does not exist in Berlin on 2026-03-29; read with +01:00 as PEP 495 fold=0 does.
    assert one("DATE", "2026-03-29 02:30:00") == utc(2026, 3, 29, 1, 30)
    assert one("DATE", "2026-03-29T02:00:00") == utc(2026, 3, 29, 1)
    assert one("TIMESTAMP", "2026-03-29 02:59:59.5") == datetime(
        2026, 3, 29, 1, 59, 59, 500000, tzinfo=UTC
    )
    assert one("DATE", "2026-03-29 03:00:00") == utc(2026, 3, 29, 1)


def test_gap_longer_than_three_hours_fails() -> None:
    # Samoa skipped 30 December 2011 entirely.
    assert (
        code_of("DATE", "2011-12-30 12:00:00", zone="Pacific/Apia") == "date_nonexistent_local_time"
    )


def test_fall_back_takes_the_earlier_instant() -> None:
    assert one("DATE", "2026-10-25 02:30:00") == utc(2026, 10, 25, 0, 30)
    assert one("DATE", "2026-10-25T02:30:00") == utc(2026, 10, 25, 0, 30)
    assert one("DATE", "2026-10-25 03:00:00") == utc(2026, 10, 25, 2)


def test_timestamp_without_zone_is_erp_local_with_fractions() -> None:
    assert one("TIMESTAMP", "2026-11-26 14:03:00.123456") == utc(2026, 11, 26, 13, 3, 0, 123456)
    assert one("TIMESTAMP(3)", "2026-11-26T14:03:00.5") == utc(2026, 11, 26, 13, 3, 0, 500000)
    assert one("TIMESTAMP", "2026-11-26 14:03:00") == utc(2026, 11, 26, 13, 3)
    assert one("TIMESTAMP", "26-NOV-26") == utc(2026, 11, 25, 23)
    assert code_of("TIMESTAMP", "2026-02-30 10:00:00") == "timestamp_invalid"
    assert code_of("TIMESTAMP", "2026-11-26 14:03:00 +01:00") == "timestamp_unreadable"


NAIVE = st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(2049, 12, 31, 23, 59, 59))


def date_renderings(moment: datetime) -> list[tuple[str, datetime]]:
    """Each DATE form of ``moment``, with the wall-clock time it stands for."""
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    second = moment.replace(microsecond=0)
    mon = day.strftime("%b").upper()
    return [
        (f"{day.day:02d}-{mon}-{day.year % 100:02d}", day),
        (f"{day.day:02d}-{mon.lower()}-{day.year:04d}", day),
        (day.strftime("%Y-%m-%d"), day),
        (second.strftime("%Y-%m-%d %H:%M:%S"), second),
        (second.strftime("%Y-%m-%dT%H:%M:%S"), second),
        (day.strftime("%Y%m%d"), day),
    ]


@settings(max_examples=150, deadline=None)
@given(NAIVE, st.sampled_from([ZONE, "America/New_York", "Australia/Lord_Howe", "UTC"]))
def test_any_datetime_round_trips_through_every_date_form(moment: datetime, zone: str) -> None:
    forms = date_renderings(moment)
    results = run_column("DATE", [text for text, _ in forms], zone=zone)
    for (text, wall), (value, code) in zip(forms, results, strict=True):
        expected = local_to_utc(wall, ZoneInfo(zone))
        assert (value, code) == (expected, None), text


DATE_ALPHABET = st.text(alphabet="0123456789-: TZ.+NOVnov", max_size=22)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(DATE_ALPHABET, NAIVE.map(str)), min_size=1, max_size=20))
@pytest.mark.parametrize("type_text", ["DATE", "TIMESTAMP"])
def test_fast_path_agrees_with_the_exact_reader(type_text: str, texts: list[str]) -> None:
    for text, (settled, fast, slow, code) in zip(
        texts, fast_and_slow(type_text, texts), strict=True
    ):
        if settled:
            assert code is None, f"{text!r}: fast path took what the reader refuses ({code})"
            assert fast == slow, f"{text!r}: fast {fast!r} != exact {slow!r}"


FORM_FORMATS = {
    "iso_date": "%Y-%m-%d",
    "iso_space": "%Y-%m-%d %H:%M:%S",
    "iso_t": "%Y-%m-%dT%H:%M:%S",
    "rr": "%d-%b-%y",
    "mon_yyyy": "%d-%b-%Y",
    "compact": "%Y%m%d",
    "iso_space_fraction": "%Y-%m-%d %H:%M:%S.%f",
    "iso_t_fraction": "%Y-%m-%dT%H:%M:%S.%f",
}


@settings(max_examples=25, deadline=None)
@given(st.lists(NAIVE, min_size=3, max_size=8), st.sampled_from(sorted(FORM_FORMATS)))
@pytest.mark.parametrize("type_text", ["DATE", "TIMESTAMP"])
def test_whichever_form_dominates_the_fast_path_agrees_with_the_exact_reader(
    type_text: str, moments: list[datetime], dominant: str
) -> None:
    sample = [m.strftime(FORM_FORMATS[dominant]).upper() for m in moments]
    texts = [m.strftime(fmt) for m in moments for fmt in FORM_FORMATS.values()]
    texts += [near for text in sample[:2] for near in mutations(text)]
    for text, (settled, fast, slow, code) in zip(
        texts, fast_and_slow(type_text, texts, sample=sample), strict=True
    ):
        if settled:
            assert code is None, f"{text!r}: fast path took what the reader refuses ({code})"
            assert fast == slow, f"{text!r}: fast {fast!r} != exact {slow!r}"


@pytest.mark.parametrize("dominant", sorted(FORM_FORMATS))
def test_a_column_in_any_one_form_normalizes(dominant: str) -> None:
    moments = [datetime(2026, 11, 26, 14, 3, 0, 123456), datetime(1999, 1, 31, 23, 59, 59, 5)]
    texts = [m.strftime(FORM_FORMATS[dominant]).upper() for m in moments] * 50
    type_text = "TIMESTAMP" if "fraction" in dominant else "DATE"
    got = [value for value, _ in run_column(type_text, texts)]
    precision = {"iso_date": "day", "rr": "day", "mon_yyyy": "day", "compact": "day"}
    expected = []
    for m in moments:
        wall = m
        if precision.get(dominant) == "day":
            wall = m.replace(hour=0, minute=0, second=0, microsecond=0)
        elif "fraction" not in dominant:
            wall = m.replace(microsecond=0)
        expected.append(local_to_utc(wall))
    assert got == expected * 50
