"""When to try again: backoff from the actual attempt, always inside the calling window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from callbacks.windows import next_dial_time
from config.calendar import Calendar
from config.calling import MachinePolicy, RetryPolicy


class CallOutcome(str, Enum):
    """How an attempt ended, from the carrier's status callback (or the dial itself)."""

    ANSWERED = "answered"  # a person answered and the call completed
    MACHINE = "machine"  # an answering machine or fax answered
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"  # the carrier could not place the call (or the dial raised)
    CANCELED = "canceled"
    UNKNOWN = "unknown"  # no final status arrived within the call timeout


class Verdict(str, Enum):
    COMPLETED = "completed"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    retry_at: datetime | None = None
    leave_message: bool = False


_TWILIO_STATUS = {
    "completed": CallOutcome.ANSWERED,
    "busy": CallOutcome.BUSY,
    "no-answer": CallOutcome.NO_ANSWER,
    "failed": CallOutcome.FAILED,
    "canceled": CallOutcome.CANCELED,
}


def outcome_of(status: str, answered_by: str | None) -> CallOutcome | None:
    """Map Twilio's CallStatus/AnsweredBy to an outcome; None for non-final statuses."""
    outcome = _TWILIO_STATUS.get(status.strip().lower())
    if outcome is None:
        return None
    by = (answered_by or "").strip().lower()
    if outcome is CallOutcome.ANSWERED and (by.startswith("machine") or by == "fax"):
        return CallOutcome.MACHINE
    return outcome


def decide(
    outcome: CallOutcome,
    *,
    policy: RetryPolicy,
    attempt: int,
    attempted_at: datetime,
    window: Calendar,
    min_left: timedelta = timedelta(0),
    not_after: datetime | None = None,
) -> Decision:
    """What happens after attempt number `attempt` (1-based), started at `attempted_at`.

    The next attempt is `attempted_at + backoff`, moved forward to the next moment the
    calling window allows; past `max_attempts` or past `not_after` the job fails.
    """
    if outcome is CallOutcome.ANSWERED:
        return Decision(Verdict.COMPLETED, "answered")
    if outcome is CallOutcome.UNKNOWN:
        # The call may have happened: never ring twice on a guess.
        return Decision(Verdict.COMPLETED, "status_unknown")
    if outcome is CallOutcome.MACHINE:
        if policy.on_machine is MachinePolicy.MESSAGE:
            return Decision(Verdict.COMPLETED, "machine_message", leave_message=True)
        if policy.on_machine is MachinePolicy.GIVE_UP:
            return Decision(Verdict.FAILED, "machine")
    if attempt >= policy.max_attempts:
        return Decision(Verdict.FAILED, f"max_attempts:{outcome.value}")
    candidate = attempted_at + timedelta(seconds=policy.delay_after(attempt))
    when = next_dial_time(candidate, window, min_left=min_left, not_after=not_after)
    if when is None:
        return Decision(Verdict.FAILED, f"no_window:{outcome.value}")
    return Decision(Verdict.RETRY, outcome.value, retry_at=when)
