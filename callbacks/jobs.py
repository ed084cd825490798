"""Callback jobs: kinds, states, the transition table, and the record kept in Redis.

The transition table below is the only statement of which state may follow which. Python
checks it with `check_transition`; the Lua scripts receive the allowed source states from
`sources_of()` in ARGV and check them atomically against the stored state, so the table is
written once and enforced where the write happens.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any


class JobKind(str, Enum):
    SURVEY = "survey"
    CARE_FOLLOW_UP = "care_follow_up"
    COMPLAINT_FOLLOW_UP = "complaint_follow_up"
    QUEUE_CALLBACK = "queue_callback"


class JobState(str, Enum):
    SCHEDULED = "scheduled"
    DIALLING = "dialling"  # claimed by a worker under a lease; the dial may be under way
    IN_PROGRESS = "in_progress"  # the carrier accepted the call; waiting for its final status
    COMPLETED = "completed"
    RETRY_SCHEDULED = "retry_scheduled"
    FAILED = "failed"
    CANCELLED = "cancelled"


S = JobState
TRANSITIONS: Mapping[JobState, frozenset[JobState]] = {
    # reschedule keeps a job scheduled; failed: no window left before not_after
    S.SCHEDULED: frozenset({S.DIALLING, S.SCHEDULED, S.CANCELLED, S.FAILED}),
    S.RETRY_SCHEDULED: frozenset({S.DIALLING, S.SCHEDULED, S.CANCELLED, S.FAILED}),
    # dialling -> dialling: an expired lease taken over by another worker;
    # dialling -> scheduled: claimed outside the window (worker was late), put back unused
    S.DIALLING: frozenset(
        {S.DIALLING, S.IN_PROGRESS, S.SCHEDULED, S.RETRY_SCHEDULED, S.FAILED, S.COMPLETED}
    ),
    S.IN_PROGRESS: frozenset({S.COMPLETED, S.RETRY_SCHEDULED, S.FAILED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}
TERMINAL: frozenset[JobState] = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})
WAITING: frozenset[JobState] = frozenset({S.SCHEDULED, S.RETRY_SCHEDULED})


class InvalidTransition(Exception):
    def __init__(self, current: JobState, target: JobState) -> None:
        self.current = current
        self.target = target
        super().__init__(f"a {current.value} job cannot become {target.value}")


def can_transition(current: JobState, target: JobState) -> bool:
    return target in TRANSITIONS[current]


def check_transition(current: JobState, target: JobState) -> None:
    if not can_transition(current, target):
        raise InvalidTransition(current, target)


def sources_of(target: JobState, *, exclude: frozenset[JobState] = frozenset()) -> str:
    """Comma-separated states that may become `target` (the form the Lua scripts take)."""
    return ",".join(
        sorted(
            s.value for s, targets in TRANSITIONS.items() if target in targets and s not in exclude
        )
    )


def ms_to_dt(ms: int | float) -> datetime:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC)


def dt_to_ms(when: datetime) -> int:
    if when.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return int(round(when.timestamp() * 1000))


def _iso(ms: int | None) -> str | None:
    return ms_to_dt(ms).isoformat().replace("+00:00", "Z") if ms is not None else None


@dataclass(frozen=True)
class Transition:
    state: JobState
    at_ms: int
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state.value, "at": _iso(self.at_ms), "reason": self.reason or None}


@dataclass(frozen=True)
class Attempt:
    number: int
    started_ms: int
    call_sid: str | None = None
    outcome: str | None = None
    answered_by: str | None = None
    ended_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "started_at": _iso(self.started_ms),
            "call_sid": self.call_sid,
            "outcome": self.outcome,
            "answered_by": self.answered_by,
            "ended_at": _iso(self.ended_ms),
        }


@dataclass(frozen=True)
class NewJob:
    """What a caller supplies to schedule a job; the store adds id, state and times."""

    kind: JobKind
    phone: str  # E.164, validated by the caller
    due_ms: int  # first dial time, already inside the calling window
    not_after_ms: int | None = None
    timezone: str | None = None  # explicit customer zone, if known
    queue: str | None = None
    agent: str | None = None
    language: str | None = None
    reason: str | None = None
    note: str | None = None
    case_id: str | None = None
    origin_call_sid: str | None = None  # the call a survey or follow-up is about

    def fields(self) -> dict[str, str]:
        """The optional text fields as stored (absent values omitted)."""
        values = {
            "timezone": self.timezone,
            "queue": self.queue,
            "agent": self.agent,
            "language": self.language,
            "reason": self.reason,
            "note": self.note,
            "case_id": self.case_id,
            "origin_call_sid": self.origin_call_sid,
        }
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class Job:
    id: str
    kind: JobKind
    state: JobState
    phone: str
    due_ms: int
    created_ms: int
    updated_ms: int
    attempt: int = 0  # number of the current or last attempt (0: never dialled)
    not_after_ms: int | None = None
    timezone: str | None = None
    queue: str | None = None
    agent: str | None = None
    language: str | None = None
    reason: str | None = None
    note: str | None = None
    case_id: str | None = None
    origin_call_sid: str | None = None
    call_sid: str | None = None
    outcome: str | None = None  # why the job ended or why the last attempt failed
    agent_outcome: str | None = None  # reached / no_answer / wrong_number / resolved
    history: tuple[Transition, ...] = field(default=())
    attempts: tuple[Attempt, ...] = field(default=())

    @property
    def due(self) -> datetime:
        return ms_to_dt(self.due_ms)

    @classmethod
    def from_redis(
        cls,
        data: Mapping[str, str],
        history: list[str] | None = None,
        attempts: list[str] | None = None,
    ) -> Job:
        def opt(name: str) -> str | None:
            value = data.get(name)
            return value if value else None

        def opt_int(name: str) -> int | None:
            value = data.get(name)
            return int(float(value)) if value else None

        parsed_history = []
        for raw in history or []:
            item = json.loads(raw)
            parsed_history.append(
                Transition(JobState(item["s"]), int(item["at"]), str(item.get("r") or ""))
            )
        parsed_attempts = []
        for raw in attempts or []:
            item = json.loads(raw)
            parsed_attempts.append(
                Attempt(
                    number=int(item["n"]),
                    started_ms=int(item["at"]),
                    call_sid=item.get("sid") or None,
                    outcome=item.get("out") or None,
                    answered_by=item.get("by") or None,
                    ended_ms=int(item["end"]) if item.get("end") else None,
                )
            )
        return cls(
            id=data["id"],
            kind=JobKind(data["kind"]),
            state=JobState(data["state"]),
            phone=data["phone"],
            due_ms=int(float(data["due"])),
            created_ms=int(float(data["created"])),
            updated_ms=int(float(data.get("updated") or data["created"])),
            attempt=int(data.get("attempt") or 0),
            not_after_ms=opt_int("not_after"),
            timezone=opt("timezone"),
            queue=opt("queue"),
            agent=opt("agent"),
            language=opt("language"),
            reason=opt("reason"),
            note=opt("note"),
            case_id=opt("case_id"),
            origin_call_sid=opt("origin_call_sid"),
            call_sid=opt("call_sid"),
            outcome=opt("outcome"),
            agent_outcome=opt("agent_outcome"),
            history=tuple(parsed_history),
            attempts=tuple(parsed_attempts),
        )

    def to_dict(self, *, detail: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind.value,
            "status": self.state.value,
            "phone": self.phone,
            "due_at": _iso(self.due_ms),
            "not_after": _iso(self.not_after_ms),
            "created_at": _iso(self.created_ms),
            "updated_at": _iso(self.updated_ms),
            "attempts_made": self.attempt,
            "timezone": self.timezone,
            "queue": self.queue,
            "agent": self.agent,
            "language": self.language,
            "reason": self.reason,
            "note": self.note,
            "case_id": self.case_id,
            "call_sid": self.call_sid,
            "outcome": self.outcome,
            "agent_outcome": self.agent_outcome,
        }
        if detail:
            body["history"] = [t.to_dict() for t in self.history]
            body["attempts"] = [a.to_dict() for a in self.attempts]
        return body
