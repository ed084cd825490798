"""Durable callback jobs in Redis: schedule, claim under a lease, settle, cancel, DNC.

Layout (all keys in `config.keys.Keys`, all under one `{cb}` hash tag, so every script's
keys share a slot and the code runs unchanged on Redis Cluster):

- `cb_due`   sorted set id -> due ms of waiting jobs (scheduled, retry_scheduled);
- `cb_leases` sorted set id -> lease expiry of dialling jobs / status deadline of calls;
- `cb_job`   one hash per job; its `dial_mark` is the dial's idempotency key: written as
  `pending:<lease>` by the claim itself (before the dial), replaced by the CallSid when the
  carrier accepts the call. A worker that takes over an expired lease reads it: a CallSid
  means the call happened (reconcile, do not dial); `pending` means it may have: the
  dialer is asked (`find_call`) and the job is dialled only if the carrier has no call.

Every state change is one Lua script (`.lua` beside this module, registered once with
`register_script`, called by SHA). Scripts use Redis's clock, never a worker's.

Bounds: live jobs <= `limits.max_jobs` (scheduling beyond raises `StoreFull`); history
lists keep the last `HISTORY_CAP` transitions; attempts <= max_attempts (<= 10); finished
jobs expire after `limits.retention_s`; the listing index is trimmed to the retention;
the DNC set holds at most `DNC_MAX` numbers (adds beyond are refused and counted).

Durability: jobs live only in Redis, so the operator must enable persistence: AOF
(`appendonly yes`, `appendfsync everysec`, which the embedded Redis of
`config.redis_conn` turns on) plus RDB snapshots for backups. With `everysec` a Redis
crash can lose the last second of writes; if that second held the claim of a job whose
dial went out, the job comes back as scheduled and could ring again. `appendfsync always`
closes that gap at a throughput cost (outbound calls are few; it is affordable).
A replica promoted by Sentinel has the same window (replication is asynchronous; WAIT 1
after the claim would close it).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from importlib.resources import files
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from callbacks.jobs import (
    TERMINAL,
    Job,
    JobKind,
    JobState,
    NewJob,
    dt_to_ms,
    ms_to_dt,
    sources_of,
)
from config.calling import CallingLimits
from config.keys import Keys

HISTORY_CAP = 50
DNC_MAX = 1_000_000
CALL_KEY_TTL_S = 7 * 86400
CLAIM_BATCH_MAX = 200
EARLY_TTL_S = 3600


class StoreFull(Exception):
    """The live-job bound (calling.limits.max_jobs) is reached; nothing was scheduled."""


class ClaimMode(str, Enum):
    NEW = "new"
    RECOVER = "recover"
    STALE = "stale"
    DNC = "dnc"


@dataclass(frozen=True)
class Claim:
    job: Job
    mode: ClaimMode
    lease: str
    old_mark: str  # for RECOVER: '' (never marked), 'pending:<lease>' or a CallSid
    claimed_ms: int

    @property
    def dial_happened(self) -> bool:
        """The previous holder's dial reached the carrier (its CallSid is recorded)."""
        return bool(self.old_mark) and not self.old_mark.startswith("pending:")

    @property
    def dial_uncertain(self) -> bool:
        """The previous holder wrote the mark but never recorded a CallSid."""
        return self.old_mark.startswith("pending:")


class ChangeStatus(str, Enum):
    OK = "ok"
    MISSING = "missing"
    CONFLICT = "conflict"


@dataclass(frozen=True)
class ChangeResult:
    status: ChangeStatus
    state: JobState | None = None  # the job's state when the change was refused


@dataclass(frozen=True)
class JobFilter:
    states: frozenset[JobState] = frozenset()
    kinds: frozenset[JobKind] = frozenset()
    phone: str | None = None
    due_from_ms: int | None = None
    due_to_ms: int | None = None
    created_from_ms: int | None = None
    created_to_ms: int | None = None

    def matches(self, job: Job) -> bool:
        if self.states and job.state not in self.states:
            return False
        if self.kinds and job.kind not in self.kinds:
            return False
        if self.phone and job.phone != self.phone:
            return False
        if self.due_from_ms is not None and job.due_ms < self.due_from_ms:
            return False
        return not (self.due_to_ms is not None and job.due_ms >= self.due_to_ms)


def _script(redis: aioredis.Redis, name: str) -> AsyncScript:
    text = files("callbacks").joinpath(f"{name}.lua").read_text(encoding="utf-8")
    return redis.register_script(text)


def _pairs(flat: Sequence[Any]) -> dict[str, str]:
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}


class CallbackStore:
    """All Redis access for callback jobs. One instance per process; scripts load once."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, limits: CallingLimits) -> None:
        self.redis = redis
        self.keys = keys
        self.limits = limits
        self._candidates = _script(redis, "candidates")
        self._claim = _script(redis, "claim")
        self._started = _script(redis, "started")
        self._finish = _script(redis, "finish")
        self._create = _script(redis, "create")
        self._change = _script(redis, "change")
        self._dnc_add = _script(redis, "dnc_add")
        self._set_field = _script(redis, "set_field")
        self._early = _script(redis, "early_status")
        self._fresh_sources = sources_of(JobState.DIALLING, exclude=frozenset({JobState.DIALLING}))

    # --- clock ------------------------------------------------------------------------
    async def now_ms(self) -> int:
        """Redis's clock (the one every script uses), in epoch milliseconds."""
        seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def now(self) -> datetime:
        return ms_to_dt(await self.now_ms())

    # --- create / read ----------------------------------------------------------------
    def _job_keys(self, job_id: str) -> list[str]:
        return [
            self.keys.cb_job(job_id),
            self.keys.cb_history(job_id),
            self.keys.cb_attempts(job_id),
        ]

    async def create(self, new: NewJob, *, job_id: str | None = None) -> Job:
        """Schedule `new` (state scheduled). Raise StoreFull at the live-job bound; a given
        `job_id` that already exists raises KeyError (use it for idempotent creation)."""
        job_id = job_id or uuid.uuid4().hex
        args: list[str | int] = [
            job_id,
            new.due_ms,
            self.limits.max_jobs,
            int(self.limits.retention_s),
        ]
        fields = {"kind": new.kind.value, "phone": new.phone, **new.fields()}
        if new.not_after_ms is not None:
            fields["not_after"] = str(new.not_after_ms)
        for name, value in fields.items():
            args += [name, value]
        k = self.keys
        ok, detail = await self._create(
            keys=[k.cb_job(job_id), k.cb_history(job_id), k.cb_due(), k.cb_index(), k.cb_live()],
            args=args,
        )
        if not int(ok):
            if detail == "full":
                raise StoreFull(f"{self.limits.max_jobs} live callback jobs")
            raise KeyError(job_id)
        job = await self.get(job_id)
        assert job is not None
        return job

    async def get(self, job_id: str) -> Job | None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.cb_job(job_id))
            pipe.lrange(self.keys.cb_history(job_id), 0, -1)
            pipe.lrange(self.keys.cb_attempts(job_id), 0, -1)
            data, history, attempts = await pipe.execute()
        if not data:
            return None
        return Job.from_redis(data, history, attempts)

    async def get_many(self, job_ids: Sequence[str]) -> list[Job]:
        if not job_ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hgetall(self.keys.cb_job(job_id))
            rows = await pipe.execute()
        return [Job.from_redis(row) for row in rows if row]

    async def search(
        self, filt: JobFilter, *, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[Job], str | None]:
        """Jobs matching `filt`, newest first, `limit` per page. The cursor is
        '<created ms>:<id>' of the last job returned; pass it back for the next page."""
        limit = max(1, min(limit, 200))
        high: str = "+inf"
        after: tuple[int, str] | None = None  # (created ms, id) of the previous page's last
        if cursor:
            created, _, last_id = cursor.partition(":")
            if not created.isdigit() or not last_id:
                raise ValueError("bad cursor")
            high, after = created, (int(created), last_id)
        if filt.created_to_ms is not None and (high == "+inf" or filt.created_to_ms <= int(high)):
            high, after = str(filt.created_to_ms - 1), None
        low = str(filt.created_from_ms) if filt.created_from_ms is not None else "-inf"
        found: list[Job] = []
        offset = 0
        chunk = 500
        while len(found) <= limit:
            page: list[Any] = await self.redis.zrevrangebyscore(
                self.keys.cb_index(), high, low, start=offset, num=chunk, withscores=True
            )
            if not page:
                break
            offset += len(page)
            ids = [
                str(member)
                for member, score in page
                if after is None or int(score) < after[0] or str(member) < after[1]
            ]
            for job in await self.get_many(ids):
                if filt.matches(job):
                    found.append(job)
            if len(page) < chunk:
                break
        # the index orders by created ms then member; keep that order for stable cursors
        found.sort(key=lambda j: (j.created_ms, j.id), reverse=True)
        page_jobs = found[:limit]
        next_cursor = None
        if len(found) > limit:
            last = page_jobs[-1]
            next_cursor = f"{last.created_ms}:{last.id}"
        return page_jobs, next_cursor

    # --- the scheduler's side ---------------------------------------------------------
    async def claim(
        self, *, max_jobs: int, calls_per_second: float, burst: int
    ) -> tuple[int, list[Claim]]:
        """Claim up to `max_jobs` due jobs (and expired leases) within the shared rate
        limit. Returns (Redis now ms, claims)."""
        k = self.keys
        n = max(1, min(max_jobs, CLAIM_BATCH_MAX))
        # Read three times as many candidates as we want and claim a random share of them,
        # so that workers polling together do not all fight over the same head of the set.
        reply: list[Any] = await self._candidates(keys=[k.cb_due(), k.cb_leases()], args=[n * 3])
        now, due, expired = reply
        pool = list(dict.fromkeys([*due, *expired]))
        ids = pool if len(pool) <= n else random.sample(pool, n)
        if not ids:
            return int(now), []
        lease = uuid.uuid4().hex
        keys = [k.cb_due(), k.cb_leases(), k.cb_dnc(), k.cb_rate(), k.cb_live()]
        for job_id in ids:
            keys += self._job_keys(job_id)
        args: list[str | int | float] = [
            lease,
            int(self.limits.lease_s * 1000),
            calls_per_second,
            burst,
            self._fresh_sources,
            int(self.limits.retention_s),
            HISTORY_CAP,
            *ids,
        ]
        claimed: list[Any] = await self._claim(keys=keys, args=args)
        now, rows = claimed
        claims = [
            Claim(
                job=Job.from_redis(_pairs(fields)),
                mode=ClaimMode(str(mode)),
                lease=lease,
                old_mark=str(mark),
                claimed_ms=int(now),
            )
            for _id, mode, mark, fields in rows
        ]
        return int(now), claims

    async def mark_started(
        self, job_id: str, lease: str, call_sid: str
    ) -> tuple[bool, dict[str, str] | None]:
        """dialling -> in_progress with the carrier's CallSid. Returns (False, None) if the
        lease was lost; else (True, the final status that arrived before this, if any)."""
        [result] = await self.mark_started_many([(job_id, lease, call_sid)])
        return result

    async def mark_started_many(
        self, items: Sequence[tuple[str, str, str]]
    ) -> list[tuple[bool, dict[str, str] | None]]:
        """`mark_started` for several (job id, lease, CallSid) in one script call (one
        round trip); results in the same order. Each item is checked on its own."""
        if not items:
            return []
        k = self.keys
        keys = [k.cb_leases()]
        args: list[str | int] = [
            int(self.limits.call_timeout_s * 1000),
            CALL_KEY_TTL_S,
            HISTORY_CAP,
            sources_of(JobState.IN_PROGRESS),
        ]
        for job_id, lease, call_sid in items:
            keys += [*self._job_keys(job_id), k.cb_call(call_sid), k.cb_early(call_sid)]
            args += [job_id, lease, call_sid]
        reply: list[Any] = await self._started(keys=keys, args=args)
        results: list[tuple[bool, dict[str, str] | None]] = []
        for i in range(len(items)):
            ok, early = bool(int(reply[2 * i])), str(reply[2 * i + 1])
            results.append((ok, json.loads(early) if ok and early else None))
        return results

    async def park_early_status(self, call_sid: str, status: str, answered_by: str | None) -> bool:
        """Keep a final status that beat the dial's recording (the recording applies it).
        False: the call is recorded by now; handle the status normally."""
        k = self.keys
        body = json.dumps({"status": status, "answered_by": answered_by or ""})
        result = await self._early(
            keys=[k.cb_call(call_sid), k.cb_early(call_sid)], args=[body, EARLY_TTL_S]
        )
        return bool(int(result))

    async def finish_attempt(
        self,
        job_id: str,
        *,
        target: JobState,
        attempt: int,
        outcome: str,
        reason: str,
        call_sid: str | None = None,
        lease: str | None = None,
        answered_by: str | None = None,
        retry_due_ms: int | None = None,
    ) -> bool:
        """Record how attempt `attempt` ended and move to `target` (retry_scheduled needs
        `retry_due_ms`). The call is identified by `call_sid`, or, before the carrier
        accepted it, by the worker's `lease`. False: the job moved on (duplicate)."""
        if target is JobState.RETRY_SCHEDULED and retry_due_ms is None:
            raise ValueError("retry_scheduled needs retry_due_ms")
        if not call_sid and not lease:
            raise ValueError("need call_sid or lease")
        k = self.keys
        result = await self._finish(
            keys=[*self._job_keys(job_id), k.cb_due(), k.cb_leases(), k.cb_live()],
            args=[
                job_id,
                target.value,
                sources_of(target),
                attempt,
                call_sid or "",
                lease or "",
                outcome,
                answered_by or "",
                retry_due_ms or 0,
                reason,
                int(self.limits.retention_s),
                HISTORY_CAP,
                "1" if target in TERMINAL else "0",
            ],
        )
        return bool(int(result))

    async def _change_state(
        self,
        job_id: str,
        target: JobState,
        *,
        reason: str,
        sources: str,
        lease: str = "",
        due_ms: int | None = None,
        undo_attempt: bool = False,
        fields: dict[str, str] | None = None,
    ) -> ChangeResult:
        k = self.keys
        args: list[str | int] = [
            job_id,
            target.value,
            sources,
            lease,
            "" if due_ms is None else due_ms,
            reason,
            int(self.limits.retention_s),
            HISTORY_CAP,
            "1" if target in TERMINAL else "0",
            "1" if undo_attempt else "0",
        ]
        for name, value in (fields or {}).items():
            args += [name, value]
        reply = await self._change(
            keys=[*self._job_keys(job_id), k.cb_due(), k.cb_leases(), k.cb_live()], args=args
        )
        status = ChangeStatus(str(reply[0]))
        state = JobState(str(reply[1])) if len(reply) > 1 else None
        return ChangeResult(status, state)

    async def put_back(self, job_id: str, lease: str, due_ms: int, reason: str) -> ChangeResult:
        """A claimed job that must not be dialled now (outside its window): scheduled again
        at `due_ms`, its attempt undone. Only the lease holder may do it, before dialling."""
        return await self._change_state(
            job_id,
            JobState.SCHEDULED,
            reason=reason,
            sources=JobState.DIALLING.value,
            lease=lease,
            due_ms=due_ms,
            undo_attempt=True,
        )

    async def fail_unclaimed(self, job_id: str, lease: str, reason: str) -> ChangeResult:
        """A claimed job that can never be dialled (no window before its deadline)."""
        return await self._change_state(
            job_id,
            JobState.FAILED,
            reason=reason,
            sources=JobState.DIALLING.value,
            lease=lease,
            undo_attempt=True,
        )

    # --- the care team's side ---------------------------------------------------------
    async def cancel(self, job_id: str, reason: str = "cancelled") -> ChangeResult:
        """Cancel a waiting job. A dialling or in-progress job is refused (CONFLICT with
        its state): the call may already be ringing."""
        return await self._change_state(
            job_id, JobState.CANCELLED, reason=reason, sources=sources_of(JobState.CANCELLED)
        )

    async def reschedule(
        self,
        job_id: str,
        *,
        due_ms: int | None = None,
        fields: dict[str, str] | None = None,
        reason: str = "rescheduled",
    ) -> ChangeResult:
        """Move a waiting job to `due_ms` and/or change its fields (agent, queue, note,
        not_after; '' deletes). The job becomes (or stays) scheduled."""
        return await self._change_state(
            job_id,
            JobState.SCHEDULED,
            reason=reason,
            sources=sources_of(JobState.SCHEDULED, exclude=frozenset({JobState.DIALLING})),
            due_ms=due_ms,
            fields=fields,
        )

    async def set_agent_outcome(self, job_id: str, outcome: str) -> bool:
        """The agent's record of a follow-up (reached, no_answer, wrong_number, resolved)."""
        result = await self._set_field(
            keys=[self.keys.cb_job(job_id)], args=["agent_outcome", outcome]
        )
        return bool(int(result))

    async def job_for_call(self, call_sid: str) -> str | None:
        value = await self.redis.get(self.keys.cb_call(call_sid))
        return str(value) if value else None

    async def due_count(self) -> int:
        return int(await self.redis.zcard(self.keys.cb_due()))

    async def live_count(self) -> int:
        return int(await self.redis.get(self.keys.cb_live()) or 0)

    # --- do not call ------------------------------------------------------------------
    async def dnc_add(self, numbers: Iterable[str]) -> tuple[int, int]:
        """Add E.164 numbers; returns (added, refused at the DNC_MAX bound)."""
        added = refused = 0
        batch: list[str] = []
        for number in numbers:
            batch.append(number)
            if len(batch) == 1000:
                a, r = await self._dnc_add(keys=[self.keys.cb_dnc()], args=[DNC_MAX, *batch])
                added, refused, batch = added + int(a), refused + int(r), []
        if batch:
            a, r = await self._dnc_add(keys=[self.keys.cb_dnc()], args=[DNC_MAX, *batch])
            added, refused = added + int(a), refused + int(r)
        return added, refused

    async def dnc_remove(self, numbers: Iterable[str]) -> int:
        items = list(numbers)
        return int(await self.redis.srem(self.keys.cb_dnc(), *items)) if items else 0

    async def dnc_contains(self, number: str) -> bool:
        return bool(await self.redis.sismember(self.keys.cb_dnc(), number))

    async def dnc_count(self) -> int:
        return int(await self.redis.scard(self.keys.cb_dnc()))


def due_ms_of(when: datetime) -> int:
    return dt_to_ms(when)
