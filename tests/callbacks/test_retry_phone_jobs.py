"""Pure tables: retry timing inside windows, Twilio status mapping, E.164, transitions."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callbacks.jobs import (
    TERMINAL,
    TRANSITIONS,
    InvalidTransition,
    JobState,
    check_transition,
    sources_of,
)
from callbacks.phone import InvalidPhone, country_zone, mask_phone, parse_e164
from callbacks.retry import CallOutcome, Verdict, decide, outcome_of
from callbacks.windows import window_in
from config.calling import CallingConfig

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
TWO_MIN = timedelta(minutes=2)


def at(text: str, zone: ZoneInfo = SH) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


# demo policies: survey [30m, 2h] x2 give_up; care [15m, 1h, 3h, 1d] x5 message;
# complaint [10m, 30m, 1h, 3h] x6 message; queue_callback [2m, 5m, 15m] x3 retry
@pytest.mark.parametrize(
    ("kind", "outcome", "attempt", "attempted", "verdict", "retry_at"),
    [
        # a 19:55 failure in a window ending 20:00 retries the next morning, not at 20:10
        (
            "care_follow_up",
            CallOutcome.NO_ANSWER,
            1,
            "2026-03-11 19:55",
            Verdict.RETRY,
            "2026-03-12 09:00",
        ),
        # the backoff counts from the actual attempt: 10:07 + 15m
        (
            "care_follow_up",
            CallOutcome.BUSY,
            1,
            "2026-03-11 10:07",
            Verdict.RETRY,
            "2026-03-11 10:22",
        ),
        (
            "care_follow_up",
            CallOutcome.BUSY,
            2,
            "2026-03-11 10:07",
            Verdict.RETRY,
            "2026-03-11 11:07",
        ),
        (
            "care_follow_up",
            CallOutcome.FAILED,
            4,
            "2026-03-11 10:00",
            Verdict.RETRY,
            "2026-03-12 10:00",
        ),
        # a retry landing at 19:59 leaves less than 2 min: next morning
        (
            "care_follow_up",
            CallOutcome.BUSY,
            2,
            "2026-03-11 18:59",
            Verdict.RETRY,
            "2026-03-12 09:00",
        ),
        # friday evening -> saturday 10:00; saturday late -> monday; holiday skipped
        (
            "care_follow_up",
            CallOutcome.NO_ANSWER,
            1,
            "2026-03-13 19:50",
            Verdict.RETRY,
            "2026-03-14 10:00",
        ),
        (
            "care_follow_up",
            CallOutcome.NO_ANSWER,
            3,
            "2026-03-14 16:00",
            Verdict.RETRY,
            "2026-03-16 09:00",
        ),
        (
            "care_follow_up",
            CallOutcome.NO_ANSWER,
            1,
            "2026-04-30 19:55",
            Verdict.RETRY,
            "2026-05-02 10:00",
        ),
        # max attempts reached: failed
        ("care_follow_up", CallOutcome.NO_ANSWER, 5, "2026-03-11 10:00", Verdict.FAILED, None),
        ("survey", CallOutcome.BUSY, 2, "2026-03-11 10:00", Verdict.FAILED, None),
        (
            "queue_callback",
            CallOutcome.BUSY,
            1,
            "2026-03-11 10:00",
            Verdict.RETRY,
            "2026-03-11 10:02",
        ),
        # answering machine: per kind
        ("survey", CallOutcome.MACHINE, 1, "2026-03-11 10:00", Verdict.FAILED, None),
        ("care_follow_up", CallOutcome.MACHINE, 1, "2026-03-11 10:00", Verdict.COMPLETED, None),
        (
            "queue_callback",
            CallOutcome.MACHINE,
            1,
            "2026-03-11 10:00",
            Verdict.RETRY,
            "2026-03-11 10:02",
        ),
        ("queue_callback", CallOutcome.MACHINE, 3, "2026-03-11 10:00", Verdict.FAILED, None),
        # answered; unknown final status (never ring twice on a guess)
        ("survey", CallOutcome.ANSWERED, 1, "2026-03-11 10:00", Verdict.COMPLETED, None),
        ("care_follow_up", CallOutcome.UNKNOWN, 1, "2026-03-11 10:00", Verdict.COMPLETED, None),
    ],
)
def test_retry_table(
    demo_calling: CallingConfig,
    kind: str,
    outcome: CallOutcome,
    attempt: int,
    attempted: str,
    verdict: Verdict,
    retry_at: str | None,
) -> None:
    decision = decide(
        outcome,
        policy=demo_calling.retry_for(kind),
        attempt=attempt,
        attempted_at=at(attempted),
        window=demo_calling.window,
        min_left=TWO_MIN,
    )
    assert decision.verdict is verdict
    assert decision.retry_at == (at(retry_at) if retry_at else None)


def test_machine_message_is_flagged(demo_calling: CallingConfig) -> None:
    decision = decide(
        CallOutcome.MACHINE,
        policy=demo_calling.retry_for("complaint_follow_up"),
        attempt=1,
        attempted_at=at("2026-03-11 10:00"),
        window=demo_calling.window,
    )
    assert decision.leave_message and decision.reason == "machine_message"


def test_retry_across_dst_in_new_york(demo_calling: CallingConfig) -> None:
    window = window_in("America/New_York", demo_calling.window)
    # Friday 2026-03-06 19:55 EST + 1 d -> Saturday 10:00 EST; Saturday 17:30 + 3h -> Monday
    # 09:00 EDT (the clocks went forward on Sunday the 8th)
    d1 = decide(
        CallOutcome.BUSY,
        policy=demo_calling.retry_for("care_follow_up"),
        attempt=3,
        attempted_at=at("2026-03-07 17:30", NY),
        window=window,
        min_left=TWO_MIN,
    )
    assert d1.retry_at == at("2026-03-09 09:00", NY)
    assert d1.retry_at is not None and d1.retry_at.utcoffset() == timedelta(hours=-4)


def test_retry_past_not_after_fails(demo_calling: CallingConfig) -> None:
    decision = decide(
        CallOutcome.NO_ANSWER,
        policy=demo_calling.retry_for("care_follow_up"),
        attempt=1,
        attempted_at=at("2026-03-11 19:55"),
        window=demo_calling.window,
        not_after=at("2026-03-11 23:59"),
    )
    assert decision.verdict is Verdict.FAILED and decision.reason.startswith("no_window")


@pytest.mark.parametrize(
    ("status", "answered_by", "outcome"),
    [
        ("completed", None, CallOutcome.ANSWERED),
        ("completed", "human", CallOutcome.ANSWERED),
        ("completed", "unknown", CallOutcome.ANSWERED),
        ("completed", "machine_start", CallOutcome.MACHINE),
        ("completed", "machine_end_beep", CallOutcome.MACHINE),
        ("completed", "fax", CallOutcome.MACHINE),
        ("busy", None, CallOutcome.BUSY),
        ("no-answer", None, CallOutcome.NO_ANSWER),
        ("failed", None, CallOutcome.FAILED),
        ("canceled", None, CallOutcome.CANCELED),
        ("ringing", None, None),
        ("in-progress", "human", None),
        ("queued", None, None),
    ],
)
def test_twilio_status_mapping(
    status: str, answered_by: str | None, outcome: CallOutcome | None
) -> None:
    assert outcome_of(status, answered_by) == outcome


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("+8613812345678", "+8613812345678"),
        ("+86 138 1234 5678", "+8613812345678"),
        ("0086-138-1234-5678", "+8613812345678"),
        ("+1 (212) 555-0100", "+12125550100"),
        ("+44 20 7123 4567", "+442071234567"),
        ("+82.10.1234.5678", "+821012345678"),
    ],
)
def test_e164_valid(text: str, number: str) -> None:
    assert parse_e164(text) == number


@pytest.mark.parametrize(
    "text",
    [
        "13812345678",
        "+0123456789",
        "+86abc12345678",
        "+1234",
        "+1234567890123456",
        "",
        "+",
        "tel:+8613812345678",
    ],
)
def test_e164_invalid(text: str) -> None:
    with pytest.raises(InvalidPhone):
        parse_e164(text)


def test_mask_and_country() -> None:
    assert mask_phone("+8613812345678") == "***5678"
    countries = (("+852", "Asia/Hong_Kong"), ("+86", "Asia/Shanghai"), ("+1", "America/New_York"))
    assert country_zone("+85291234567", countries) == "Asia/Hong_Kong"
    assert country_zone("+8613812345678", countries) == "Asia/Shanghai"
    assert country_zone("+33123456789", countries) is None


@pytest.mark.parametrize(
    ("current", "target", "ok"),
    [
        (JobState.SCHEDULED, JobState.DIALLING, True),
        (JobState.SCHEDULED, JobState.CANCELLED, True),
        (JobState.RETRY_SCHEDULED, JobState.CANCELLED, True),
        (JobState.DIALLING, JobState.CANCELLED, False),
        (JobState.IN_PROGRESS, JobState.CANCELLED, False),
        (JobState.DIALLING, JobState.IN_PROGRESS, True),
        (JobState.IN_PROGRESS, JobState.RETRY_SCHEDULED, True),
        (JobState.IN_PROGRESS, JobState.DIALLING, False),
        (JobState.COMPLETED, JobState.SCHEDULED, False),
        (JobState.FAILED, JobState.RETRY_SCHEDULED, False),
        (JobState.CANCELLED, JobState.SCHEDULED, False),
    ],
)
def test_transition_table(current: JobState, target: JobState, ok: bool) -> None:
    if ok:
        check_transition(current, target)
    else:
        with pytest.raises(InvalidTransition):
            check_transition(current, target)


def test_terminal_states_have_no_way_out() -> None:
    assert all(not TRANSITIONS[s] for s in TERMINAL)
    assert set(TRANSITIONS) == set(JobState)
    assert sources_of(JobState.CANCELLED) == "retry_scheduled,scheduled"
