"""Survey answers per call, with CSAT and the satisfaction index per queue, agent, day, month.

CSAT is the share of scores of 4 or 5; the satisfaction index is the mean score (both as
DESIGN.md defines them). Days and months are the bank's calendar days (its time zone).
One survey per call: a second answer for the same call is refused, not double-counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from callbacks.jobs import ms_to_dt
from config.keys import Keys

SURVEY_RETENTION_S = 400 * 86400
SCOPES = ("all", "queue", "agent")


@dataclass(frozen=True)
class SurveyAnswer:
    call_sid: str  # the call that was surveyed (the agent call, not the survey call)
    answered_ms: int
    score: int | None = None  # 1..5
    solved: bool | None = None
    queue: str | None = None
    agent: str | None = None
    language: str | None = None
    phone: str | None = None
    comment_url: str | None = None  # the recorded comment, if any
    complaint: bool = False
    comment_text: str | None = None  # the comment transcribed offline, once available

    def __post_init__(self) -> None:
        if self.score is not None and not 1 <= self.score <= 5:
            raise ValueError("score must be 1..5")

    @property
    def poor(self) -> bool:
        """Opens a care case: a score of 1 or 2, 'not solved', or a complaint."""
        return (
            (self.score is not None and self.score <= 2) or self.solved is False or self.complaint
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "call_sid": self.call_sid,
            "answered_at": ms_to_dt(self.answered_ms).isoformat().replace("+00:00", "Z"),
            "score": self.score,
            "solved": self.solved,
            "queue": self.queue,
            "agent": self.agent,
            "language": self.language,
            "comment_url": self.comment_url,
            "comment_text": self.comment_text,
            "complaint": self.complaint,
        }

    @classmethod
    def from_redis(cls, data: Mapping[str, str]) -> SurveyAnswer:
        solved = data.get("solved")
        return cls(
            call_sid=data["call_sid"],
            answered_ms=int(data["answered"]),
            score=int(data["score"]) if data.get("score") else None,
            solved=None if not solved else solved == "1",
            queue=data.get("queue") or None,
            agent=data.get("agent") or None,
            language=data.get("language") or None,
            phone=data.get("phone") or None,
            comment_url=data.get("comment_url") or None,
            complaint=data.get("complaint") == "1",
            comment_text=data.get("comment_text") or None,
        )


@dataclass(frozen=True)
class Satisfaction:
    answers: int  # surveys with a score
    csat: float | None  # share of 4-5, 0..1
    index: float | None  # mean score, 1..5
    solved: int
    unsolved: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "answers": self.answers,
            "csat": None if self.csat is None else round(self.csat, 4),
            "satisfaction_index": None if self.index is None else round(self.index, 3),
            "solved": self.solved,
            "unsolved": self.unsolved,
        }


def satisfaction(n: int, total: int, happy: int, solved: int, unsolved: int) -> Satisfaction:
    return Satisfaction(
        answers=n,
        csat=happy / n if n else None,
        index=total / n if n else None,
        solved=solved,
        unsolved=unsolved,
    )


class SurveyStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys, bank_timezone: str) -> None:
        self.redis = redis
        self.keys = keys
        self.zone = ZoneInfo(bank_timezone)
        text = files("callbacks").joinpath("survey_record.lua").read_text(encoding="utf-8")
        self._record = redis.register_script(text)
        comment = files("callbacks").joinpath("survey_comment.lua").read_text(encoding="utf-8")
        self._comment = redis.register_script(comment)

    def day_of(self, ms: int) -> str:
        return ms_to_dt(ms).astimezone(self.zone).strftime("%Y-%m-%d")

    async def record(self, answer: SurveyAnswer) -> bool:
        """Store the answers and count them; False if this call was already surveyed."""
        day = self.day_of(answer.answered_ms)
        scopes = ["all:*"]
        if answer.queue:
            scopes.append(f"queue:{answer.queue}")
        if answer.agent:
            scopes.append(f"agent:{answer.agent}")
        fields: dict[str, str] = {
            "call_sid": answer.call_sid,
            "answered": str(answer.answered_ms),
            "day": day,
            "complaint": "1" if answer.complaint else "0",
        }
        optional = {
            "score": str(answer.score) if answer.score is not None else None,
            "solved": None if answer.solved is None else ("1" if answer.solved else "0"),
            "queue": answer.queue,
            "agent": answer.agent,
            "language": answer.language,
            "phone": answer.phone,
            "comment_url": answer.comment_url,
        }
        fields.update({k: v for k, v in optional.items() if v})
        args: list[str | int] = [
            answer.call_sid,
            answer.answered_ms,
            SURVEY_RETENTION_S,
            fields.get("score", ""),
            fields.get("solved", ""),
            ",".join(s.replace(",", "_") for s in scopes),
        ]
        for name, value in fields.items():
            args += [name, value]
        k = self.keys
        result = await self._record(
            keys=[
                k.cb_survey(answer.call_sid),
                k.cb_survey_index(),
                k.cb_survey_stats(day),
                k.cb_survey_stats(day[:7]),
            ],
            args=args,
        )
        return bool(int(result))

    async def add_comment(
        self, call_sid: str, *, url: str | None = None, text: str | None = None
    ) -> bool:
        """Attach a recorded comment (its URL, later its transcript) to a survey already
        recorded; False if there is no such survey. Idempotent (a retry writes the same)."""
        fields = {k: v for k, v in (("comment_url", url), ("comment_text", text)) if v}
        if not fields:
            return False
        key = self.keys.cb_survey(call_sid)
        # survey_comment.lua writes only into an existing hash: a comment never creates a
        # survey of its own (the record script treats an existing hash as recorded).
        args = [item for pair in fields.items() for item in pair]
        return bool(int(await self._comment(keys=[key], args=args)))

    async def get(self, call_sid: str) -> SurveyAnswer | None:
        data: Any = await self.redis.hgetall(self.keys.cb_survey(call_sid))
        return SurveyAnswer.from_redis(data) if data else None

    async def search(
        self,
        *,
        from_ms: int | None = None,
        to_ms: int | None = None,
        queue: str | None = None,
        agent: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[SurveyAnswer]:
        """Answers between from_ms and to_ms (newest first), filtered by queue/agent."""
        limit = max(1, min(limit, 500))
        high = str(to_ms - 1) if to_ms is not None else "+inf"
        low = str(from_ms) if from_ms is not None else "-inf"
        found: list[SurveyAnswer] = []
        skipped = 0
        start = 0
        while len(found) < limit:
            ids: list[Any] = await self.redis.zrevrangebyscore(
                self.keys.cb_survey_index(), high, low, start=start, num=500
            )
            if not ids:
                break
            start += len(ids)
            async with self.redis.pipeline(transaction=False) as pipe:
                for call_sid in ids:
                    pipe.hgetall(self.keys.cb_survey(str(call_sid)))
                rows = await pipe.execute()
            for row in rows:
                if not row:
                    continue
                answer = SurveyAnswer.from_redis(row)
                if queue and answer.queue != queue or agent and answer.agent != agent:
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                found.append(answer)
                if len(found) >= limit:
                    break
        return found

    async def stats(self, period: str, scope: str = "queue") -> dict[str, Satisfaction]:
        """CSAT and index per name of `scope` ('all', 'queue', 'agent') for one day
        ('YYYY-MM-DD') or month ('YYYY-MM')."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}")
        raw: Any = await self.redis.hgetall(self.keys.cb_survey_stats(period))
        counts: dict[str, dict[str, int]] = {}
        for field, value in raw.items():
            field_scope, _, rest = field.partition(":")
            name, _, measure = rest.rpartition(":")
            if field_scope != scope:
                continue
            counts.setdefault(name, {})[measure] = int(value)
        return {
            name: satisfaction(
                c.get("n", 0),
                c.get("sum", 0),
                c.get("happy", 0),
                c.get("solved", 0),
                c.get("unsolved", 0),
            )
            for name, c in sorted(counts.items())
        }

    def period_of(self, when: datetime, monthly: bool = False) -> str:
        local = when.astimezone(self.zone)
        return local.strftime("%Y-%m" if monthly else "%Y-%m-%d")
