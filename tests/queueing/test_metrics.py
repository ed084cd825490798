"""Service metrics by the DESIGN.md definitions."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from queueing.metrics import (
    Tally,
    abandonment_rate,
    average_handle_time,
    average_speed_of_answer,
    is_short_abandon,
    occupancy,
    percentile,
    service_level,
    summarize,
    summarize_by_priority,
    tally,
)


@dataclass(frozen=True)
class Rec:
    wait_s: float
    answered: bool
    handle_s: float = 0.0
    priority: int = 0


def answered(wait: float, handle: float = 180.0, priority: int = 0) -> Rec:
    return Rec(wait, True, handle, priority)


def abandoned(wait: float, priority: int = 0) -> Rec:
    return Rec(wait, False, 0.0, priority)


@pytest.mark.parametrize(
    ("within", "answered_", "abandoned_after", "expected"),
    [
        (80, 100, 0, 0.8),
        (80, 90, 10, 0.8),
        (0, 0, 5, 0.0),
        (10, 10, 0, 1.0),
        (0, 0, 0, None),
    ],
)
def test_service_level(
    within: int, answered_: int, abandoned_after: int, expected: float | None
) -> None:
    assert service_level(within, answered_, abandoned_after) == expected


def test_simple_ratios() -> None:
    assert average_speed_of_answer(300.0, 10) == 30.0
    assert average_speed_of_answer(0.0, 0) is None
    assert abandonment_rate(5, 100) == 0.05
    assert abandonment_rate(0, 0) is None
    assert average_handle_time(1800.0, 10) == 180.0
    assert average_handle_time(0.0, 0) is None
    assert occupancy(45.0, 60.0) == 0.75
    assert occupancy(0.0, 0.0) is None
    assert is_short_abandon(4.99) and not is_short_abandon(5.0)
    assert is_short_abandon(9.0, 10.0)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 95, None),
        ([3.0], 95, 3.0),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 50, 3.0),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 100, 5.0),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 0, 1.0),
        ([5.0, 1.0, 4.0, 2.0, 3.0], 25, 2.0),
        (list(map(float, range(101))), 95, 95.0),
        ([0.0, 10.0], 95, 9.5),
    ],
)
def test_percentile(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


def test_percentile_rejects_bad_q() -> None:
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summary_by_definitions() -> None:
    records = [
        answered(0.0, 100.0),
        answered(30.0, 200.0),  # exactly at T: within
        answered(31.0, 300.0),  # after T
        abandoned(2.0),  # short abandon: offered, abandoned, not in SL
        abandoned(20.0),  # abandoned before T: not in the SL denominator either
        abandoned(45.0),  # abandoned after T: counts against SL
    ]
    s = summarize(records, target_s=30, busy_s=450.0, staffed_s=600.0)
    assert (s.offered, s.answered, s.abandoned, s.short_abandons) == (6, 3, 3, 1)
    assert (s.answered_within_target, s.abandoned_after_target) == (2, 1)
    assert s.service_level == pytest.approx(2 / 4)
    assert s.asa_s == pytest.approx(61 / 3)
    assert s.abandon_rate == pytest.approx(3 / 6)
    assert s.aht_s == pytest.approx(200.0)
    assert s.occupancy == pytest.approx(0.75)
    assert s.p95_wait_s == pytest.approx(30.9)
    assert s.max_wait_s == 45.0
    assert s.to_dict()["service_level"] == s.service_level


def test_short_abandon_threshold_configurable() -> None:
    records = [answered(10.0), abandoned(8.0), abandoned(40.0)]
    assert tally(records, target_s=5, short_abandon_s=10).short_abandons == 1
    # with a 10 s short-abandon threshold and T = 5 s, the 8 s abandon is left out of SL
    assert summarize(records, target_s=5, short_abandon_s=10).service_level == pytest.approx(0.0)
    assert tally(records, target_s=5, short_abandon_s=5).abandoned_after_target == 2


def test_empty_summary() -> None:
    s = summarize([], target_s=30)
    assert s.offered == 0
    assert (s.service_level, s.asa_s, s.abandon_rate, s.aht_s, s.occupancy) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert s.p95_wait_s is None and s.max_wait_s is None


def test_by_priority() -> None:
    records = [answered(5.0, priority=1), answered(50.0), abandoned(60.0), answered(1.0)]
    by = summarize_by_priority(records, target_s=30)
    assert list(by) == [1, 0]
    assert by[1].service_level == 1.0 and by[1].offered == 1
    assert by[0].service_level == pytest.approx(1 / 3) and by[0].offered == 3


record_st = st.builds(
    Rec,
    wait_s=st.floats(0, 600),
    answered=st.booleans(),
    handle_s=st.floats(0, 900),
    priority=st.integers(0, 3),
)


@given(a=st.lists(record_st, max_size=30), b=st.lists(record_st, max_size=30))
def test_tallies_add_up(a: list[Rec], b: list[Rec]) -> None:
    # the live stats keep one Tally per interval and add them up: same as counting at once
    whole = tally(a + b, target_s=30)
    parts = tally(a, target_s=30) + tally(b, target_s=30)
    assert (whole.offered, whole.answered, whole.abandoned, whole.short_abandons) == (
        parts.offered,
        parts.answered,
        parts.abandoned,
        parts.short_abandons,
    )
    assert whole.answered_within_target == parts.answered_within_target
    assert whole.abandoned_after_target == parts.abandoned_after_target
    assert whole.answered_wait_total_s == pytest.approx(parts.answered_wait_total_s)
    assert whole == Tally() + whole


@given(records=st.lists(record_st, min_size=1, max_size=50))
def test_summary_invariants(records: list[Rec]) -> None:
    s = summarize(records, target_s=30)
    assert s.offered == s.answered + s.abandoned
    assert s.short_abandons + s.abandoned_after_target <= s.abandoned
    if s.service_level is not None:
        assert 0.0 <= s.service_level <= 1.0
    assert s.abandon_rate is not None and 0.0 <= s.abandon_rate <= 1.0
