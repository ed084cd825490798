"""Care cases: a poor survey, an unsolved problem or a complaint, answered within 24 h.

A case is opened once per call (its id is the call's), gets a care follow-up job, and
tracks its response time from opening to the first contact back against the 24 h target.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from importlib.resources import files
from typing import Any

import redis.asyncio as aioredis

from callbacks.jobs import ms_to_dt
from config.keys import Keys

RESPONSE_TARGET_MS = 24 * 3600 * 1000
CASE_RETENTION_S = 400 * 86400


class CaseKind(str, Enum):
    POOR_SCORE = "poor_score"
    NOT_SOLVED = "not_solved"
    COMPLAINT = "complaint"


class CaseStatus(str, Enum):
    OPEN = "open"
    CONTACTED = "contacted"  # reached the customer; not yet resolved
    CLOSED = "closed"


def _iso(ms: int | None) -> str | None:
    return ms_to_dt(ms).isoformat().replace("+00:00", "Z") if ms is not None else None


@dataclass(frozen=True)
class Case:
    id: str
    kind: CaseKind
    status: CaseStatus
    phone: str
    opened_ms: int
    deadline_ms: int
    call_sid: str | None = None
    queue: str | None = None
    agent: str | None = None
    language: str | None = None
    note: str | None = None
    job_id: str | None = None
    first_contact_ms: int | None = None
    response_ms: int | None = None
    closed_ms: int | None = None
    outcome: str | None = None

    def met_target(self) -> bool | None:
        """Whether the first contact came within 24 h (None: no contact yet)."""
        return None if self.response_ms is None else self.response_ms <= RESPONSE_TARGET_MS

    def overdue(self, now_ms: int) -> bool:
        return self.first_contact_ms is None and now_ms > self.deadline_ms

    @classmethod
    def from_redis(cls, d: Mapping[str, str]) -> Case:
        def opt_int(name: str) -> int | None:
            return int(d[name]) if d.get(name) else None

        return cls(
            id=d["id"],
            kind=CaseKind(d["kind"]),
            status=CaseStatus(d["status"]),
            phone=d.get("phone", ""),
            opened_ms=int(d["opened"]),
            deadline_ms=int(d["deadline"]),
            call_sid=d.get("call_sid") or None,
            queue=d.get("queue") or None,
            agent=d.get("agent") or None,
            language=d.get("language") or None,
            note=d.get("note") or None,
            job_id=d.get("job_id") or None,
            first_contact_ms=opt_int("first_contact"),
            response_ms=opt_int("response_ms"),
            closed_ms=opt_int("closed"),
            outcome=d.get("outcome") or None,
        )

    def to_dict(self, now_ms: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "status": self.status.value,
            "phone": self.phone,
            "opened_at": _iso(self.opened_ms),
            "deadline": _iso(self.deadline_ms),
            "overdue": self.overdue(now_ms),
            "call_sid": self.call_sid,
            "queue": self.queue,
            "agent": self.agent,
            "note": self.note,
            "follow_up_job": self.job_id,
            "first_contact_at": _iso(self.first_contact_ms),
            "response_seconds": None if self.response_ms is None else self.response_ms // 1000,
            "met_24h_target": self.met_target(),
            "closed_at": _iso(self.closed_ms),
            "outcome": self.outcome,
        }


def _script(redis: aioredis.Redis, name: str) -> Any:
    return redis.register_script(files("callbacks").joinpath(f"{name}.lua").read_text("utf-8"))


class CaseStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._open = _script(redis, "case_open")
        self._update = _script(redis, "case_update")
        self._link = _script(redis, "case_job")

    async def open(
        self,
        case_id: str,
        *,
        kind: CaseKind,
        phone: str,
        call_sid: str | None = None,
        queue: str | None = None,
        agent: str | None = None,
        language: str | None = None,
        note: str | None = None,
    ) -> tuple[Case, bool]:
        """Open the case (idempotent by id); returns (case, newly opened)."""
        fields = {
            "kind": kind.value,
            "phone": phone,
            "call_sid": call_sid,
            "queue": queue,
            "agent": agent,
            "language": language,
            "note": note,
        }
        args: list[str | int] = [case_id, RESPONSE_TARGET_MS, CASE_RETENTION_S]
        for name, value in fields.items():
            if value:
                args += [name, value]
        k = self.keys
        created, _ = await self._open(
            keys=[k.cb_case(case_id), k.cb_cases_open(), k.cb_cases_index()], args=args
        )
        case = await self.get(case_id)
        assert case is not None
        return case, bool(int(created))

    async def get(self, case_id: str) -> Case | None:
        data: Any = await self.redis.hgetall(self.keys.cb_case(case_id))
        return Case.from_redis(data) if data else None

    async def link_job(self, case_id: str, job_id: str) -> bool:
        return bool(int(await self._link(keys=[self.keys.cb_case(case_id)], args=[job_id])))

    async def record_contact(self, case_id: str) -> bool:
        """The customer was reached: the first call sets the response time."""
        return await self._change(case_id, "contact", "")

    async def close(self, case_id: str, outcome: str) -> bool:
        return await self._change(case_id, "close", outcome)

    async def _change(self, case_id: str, mode: str, outcome: str) -> bool:
        k = self.keys
        result = await self._update(
            keys=[k.cb_case(case_id), k.cb_cases_open()],
            args=[case_id, mode, outcome, CASE_RETENTION_S],
        )
        return bool(int(result))

    async def list_open(self, *, limit: int = 100, offset: int = 0) -> list[Case]:
        """Open (and contacted, unresolved) cases, earliest deadline first."""
        limit = max(1, min(limit, 500))
        ids: list[Any] = await self.redis.zrange(
            self.keys.cb_cases_open(), offset, offset + limit - 1
        )
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for case_id in ids:
                pipe.hgetall(self.keys.cb_case(str(case_id)))
            rows = await pipe.execute()
        return [Case.from_redis(row) for row in rows if row]
