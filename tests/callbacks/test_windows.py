"""Calling windows: customer zones, next dial time at edges, holidays and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbacks.windows import customer_zone, may_dial, next_dial_time, window_in
from config.calendar import Calendar
from config.calling import CallingConfig, load_calling
from tests.callbacks.conftest import ROOT, calling_from

SH = ZoneInfo("Asia/Shanghai")
DEMO = load_calling(ROOT / "config" / "calling.yaml")
NY = ZoneInfo("America/New_York")
LON = ZoneInfo("Europe/London")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def at(text: str, zone: ZoneInfo) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


@pytest.mark.parametrize(
    ("phone", "explicit", "zone"),
    [
        ("+8613812345678", None, "Asia/Shanghai"),
        ("+85291234567", None, "Asia/Hong_Kong"),  # +852 beats a shorter prefix
        ("+82101234567", None, "Asia/Seoul"),
        ("+12125550100", None, "America/New_York"),
        ("+442071234567", None, "Europe/London"),
        ("+61212345678", None, "Australia/Sydney"),
        ("+99912345678", None, "Asia/Shanghai"),  # unknown country: the bank's zone
        ("+12125550100", "America/Los_Angeles", "America/Los_Angeles"),  # explicit wins
        ("+12125550100", "Not/AZone", "America/New_York"),  # a bad explicit zone is ignored
        ("+8613812345678", "", "Asia/Shanghai"),
    ],
)
def test_customer_zone(
    demo_calling: CallingConfig, phone: str, explicit: str | None, zone: str
) -> None:
    assert customer_zone(phone, explicit, demo_calling) == zone


def bank(demo: CallingConfig, zone: ZoneInfo) -> Calendar:
    return window_in(str(zone), demo.window)


# The demo window: mon-fri 09:00-20:00, sat 10:00-18:00, holidays 2026-05-01 ...; 2 min left.
@pytest.mark.parametrize(
    ("local", "zone", "expected"),
    [
        # inside: unchanged
        ("2026-03-11 10:00", SH, "2026-03-11 10:00"),
        # opening edge exactly
        ("2026-03-11 09:00", SH, "2026-03-11 09:00"),
        ("2026-03-11 08:59:59", SH, "2026-03-11 09:00"),
        # closing edge: 19:58 leaves exactly 2 min; 19:58:01 does not
        ("2026-03-11 19:58", SH, "2026-03-11 19:58"),
        ("2026-03-11 19:58:01", SH, "2026-03-12 09:00"),
        ("2026-03-11 20:00", SH, "2026-03-12 09:00"),
        # friday evening -> saturday's shorter hours; saturday evening -> monday
        ("2026-03-13 20:30", SH, "2026-03-14 10:00"),
        ("2026-03-14 17:59", SH, "2026-03-16 09:00"),
        ("2026-03-15 12:00", SH, "2026-03-16 09:00"),
        # holiday (2026-05-01, a Friday) is skipped
        ("2026-04-30 20:00", SH, "2026-05-02 10:00"),
        ("2026-05-01 11:00", SH, "2026-05-02 10:00"),
        # new year's day 2027 (Friday): next is Saturday
        ("2026-12-31 21:00", SH, "2027-01-02 10:00"),
        # in the customer's own zone
        ("2026-03-11 08:00", NY, "2026-03-11 09:00"),
        ("2026-03-11 20:00", LON, "2026-03-12 09:00"),
    ],
)
def test_next_dial_time_demo_window(
    demo_calling: CallingConfig, local: str, zone: ZoneInfo, expected: str
) -> None:
    window = bank(demo_calling, zone)
    got = next_dial_time(at(local, zone), window, min_left=timedelta(minutes=2))
    assert got is not None
    assert got == at(expected, zone)
    assert may_dial(got, window, timedelta(minutes=2))


DAILY = calling_from(
    """
calling:
  window:
    timezone: America/New_York
    hours: {daily: "09:00-20:00"}
"""
).window
NIGHT = calling_from(
    """
calling:
  window:
    timezone: America/New_York
    hours: {daily: ["01:00-04:00", "09:00-10:00"]}
"""
).window


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # spring forward, America/New_York 2026-03-08: 09:00 EST the day before is 14:00Z,
        # 09:00 EDT on the day is 13:00Z
        ("2026-03-07T13:59:59", "2026-03-07T14:00:00"),
        ("2026-03-08T01:30:00", "2026-03-08T13:00:00"),  # after Saturday's 20:00 EST close
        ("2026-03-08T12:59:00", "2026-03-08T13:00:00"),
        ("2026-03-09T00:00:00", "2026-03-09T13:00:00"),  # Sunday 20:00 EDT close = 00:00Z
        # fall back, 2026-11-01: 09:00 EDT on the 31st is 13:00Z; 09:00 EST on the 1st 14:00Z
        ("2026-10-31T12:00:00", "2026-10-31T13:00:00"),
        ("2026-11-01T00:00:00", "2026-11-01T14:00:00"),
        ("2026-11-01T13:30:00", "2026-11-01T14:00:00"),  # 08:30 EST: still closed
        ("2026-11-02T00:59:00", "2026-11-02T00:59:00"),  # 19:59 EST: still open
        ("2026-11-02T01:00:00", "2026-11-02T14:00:00"),  # 20:00 EST: closed
    ],
)
def test_dst_daily_window(after: str, expected: str) -> None:
    assert next_dial_time(utc(after), DAILY) == utc(expected)


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        # spring forward: 02:00-03:00 local does not exist; 01:59 EST and 03:00 EDT are open
        ("2026-03-08T06:59:00", True),  # 01:59 EST
        ("2026-03-08T07:00:00", True),  # 03:00 EDT (the same instant 02:00 EST would be)
        ("2026-03-08T07:59:00", True),  # 03:59 EDT
        ("2026-03-08T08:00:00", False),  # 04:00 EDT: closed
        # fall back: 01:00-02:00 happens twice; both are inside 01:00-04:00
        ("2026-11-01T05:30:00", True),  # 01:30 EDT
        ("2026-11-01T06:30:00", True),  # 01:30 EST
        ("2026-11-01T08:59:00", True),  # 03:59 EST
        ("2026-11-01T09:00:00", False),  # 04:00 EST
    ],
)
def test_dst_night_ranges(moment: str, open_: bool) -> None:
    assert may_dial(utc(moment), NIGHT) is open_


def test_spring_forward_gap_is_not_a_dial_time() -> None:
    # from 04:00 EDT on the 8th, the next start is 09:00 EDT
    assert next_dial_time(utc("2026-03-08T08:00:00"), NIGHT) == utc("2026-03-08T13:00:00")


def test_not_after_bounds_the_search(demo_calling: CallingConfig) -> None:
    window = bank(demo_calling, SH)
    start = at("2026-03-11 20:30", SH)
    assert next_dial_time(start, window, not_after=at("2026-03-12 08:00", SH)) is None
    assert next_dial_time(start, window, not_after=at("2026-03-12 09:00", SH)) == at(
        "2026-03-12 09:00", SH
    )


def test_never_open_window_gives_none() -> None:
    closed = calling_from(
        """
calling:
  window:
    timezone: UTC
    hours: {}
"""
    ).window
    assert next_dial_time(utc("2026-03-11T00:00:00"), closed) is None


def test_naive_datetime_is_refused(demo_calling: CallingConfig) -> None:
    with pytest.raises(ValueError):
        next_dial_time(datetime(2026, 3, 11, 10, 0), demo_calling.window)


ZONES = ["Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Sydney", "Asia/Seoul"]


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    zone=st.sampled_from(ZONES),
    left=st.sampled_from([0, 2, 30]),
)
def test_next_dial_time_is_the_first_allowed_moment(moment: datetime, zone: str, left: int) -> None:
    demo = DEMO.window
    window = window_in(zone, demo)
    min_left = timedelta(minutes=left)
    got = next_dial_time(moment, window, min_left=min_left)
    assert got is not None
    assert got >= moment
    assert may_dial(got, window, min_left)
    if got > moment:
        # it is the start of a range (or of the window's allowed part): a minute earlier
        # (if after `moment`) is not allowed
        earlier = got - timedelta(minutes=1)
        assert earlier < moment or not may_dial(earlier, window, min_left)
        local = got.astimezone(ZoneInfo(zone))
        assert local.date() not in demo.holidays
