"""Pure helpers of the supervisors' figures, by table (no Redis)."""

from __future__ import annotations

from typing import Any

import pytest

from queueing.supervisor_stats import (
    advice_text,
    histogram_from_hash,
    month_days,
    previous_month,
    redact,
    staffing_advice,
)


@pytest.mark.parametrize(
    ("more", "goal", "target", "text"),
    [
        (2, 0.8, 30, "2 more agents needed to reach 80/30 at the current rate"),
        (1, 0.95, 20, "1 more agent needed to reach 95/20 at the current rate"),
        (0, 0.8, 30, "staffing meets 80/30 at the current rate"),
        (None, 0.8, 30, "no calls in the last hour: no staffing advice"),
    ],
)
def test_advice_text(more: int | None, goal: float, target: float, text: str) -> None:
    assert advice_text(more, goal, target) == text


@pytest.mark.parametrize(
    ("staffing", "recent_aht", "needed", "more"),
    [
        # the snapshot's own Erlang C answer is kept
        ({"calls_per_hour": 120.0, "agents_staffed": 3, "agents_needed": 5}, 180.0, 5, 2),
        ({"calls_per_hour": 120.0, "agents_staffed": 9, "agents_needed": 5}, 180.0, 5, 0),
        # calls but no finished call in the hour: the recent handle time stands in
        # (120 calls/h x 180 s = 6 erlangs: 9 agents reach 80 % within 30 s)
        ({"calls_per_hour": 120.0, "agents_staffed": 4, "agents_needed": None}, 180.0, 9, 5),
        ({"calls_per_hour": 0.0, "agents_staffed": 4, "agents_needed": None}, 180.0, None, None),
    ],
)
def test_staffing_advice(
    staffing: dict[str, Any], recent_aht: float, needed: int | None, more: int | None
) -> None:
    out = staffing_advice(staffing, recent_aht_s=recent_aht, goal=0.8, target_s=30)
    assert out["agents_needed"] == needed and out["agents_more"] == more
    assert out["advice"] == advice_text(more, 0.8, 30)


def test_histogram_is_cumulative() -> None:
    raw = {
        "general:answered:5000": "2",
        "general:answered:30000": "1",
        "general:answered:+Inf": "1",
        "general:answered:count": "4",
        "general:answered:sum_ms": "200000",
    }
    h = histogram_from_hash(raw)["general:answered"]
    buckets = dict((b, c) for b, c in h["buckets"])
    assert buckets[5] == 2 and buckets[25] == 2 and buckets[30] == 3 and buckets[120] == 3
    assert h["count"] == 4 and h["sum_s"] == 200


@pytest.mark.parametrize(
    ("month", "days", "previous"),
    [("2026-02", 28, "2026-01"), ("2028-02", 29, "2028-01"), ("2026-01", 31, "2025-12")],
)
def test_months(month: str, days: int, previous: str) -> None:
    assert len(month_days(month)) == days and previous_month(month) == previous


def test_redact_masks_for_viewers() -> None:
    figures: dict[str, Any] = {
        "waiting_calls": [{"number": "***1111", "call_sid": "CA1"}],
        "abandoned_today": [{"number": "***2222", "phone": "+15550002222"}],
    }
    assert "phone" not in redact(figures, "viewer")["abandoned_today"][0]
    assert redact(figures, "supervisor")["abandoned_today"][0]["phone"] == "+15550002222"


def test_json_safe_turns_non_finite_numbers_into_null() -> None:
    from queueing.supervisor_stats import json_safe

    raw = {"a": float("inf"), "b": [1.5, float("nan")], "c": {"d": -float("inf"), "e": 2}}
    assert json_safe(raw) == {"a": None, "b": [1.5, None], "c": {"d": None, "e": 2}}
