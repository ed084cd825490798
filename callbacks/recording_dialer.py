"""A Dialer that records every dial in Redis: the carrier's stand-in for tests and the bench.

Every dial writes the attempt's idempotency key -> CallSid and appends a log entry with the
wall-clock time, so tests can count dials per job across processes and check the rate.
`find_call` answers from the same record, as the carrier's call list would.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from importlib.resources import files

import redis.asyncio as aioredis

from callbacks.jobs import Job
from callbacks.retry import CallOutcome
from callbacks.scheduler import DialError, idempotency_key
from config.keys import Keys


class RecordingDialer:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        *,
        fail: dict[str, CallOutcome] | None = None,
        hang_before_s: float = 0.0,
        hang_after_s: float = 0.0,
        worker: str = "",
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.fail = dict(fail or {})  # phone -> outcome raised as DialError
        self.hang_before_s = hang_before_s  # simulate a worker stuck before the carrier call
        self.hang_after_s = hang_after_s  # ... or after the carrier placed it
        self.worker = worker
        text = files("callbacks").joinpath("recording_dial.lua").read_text(encoding="utf-8")
        self._record = redis.register_script(text)

    async def dial(self, job: Job) -> str:
        if self.hang_before_s:
            await asyncio.sleep(self.hang_before_s)
        if job.phone in self.fail:
            raise DialError("carrier refused", outcome=self.fail[job.phone])
        sid = "CA" + uuid.uuid4().hex
        entry = json.dumps(
            {"job": job.id, "attempt": job.attempt, "sid": sid, "t": time.time(), "w": self.worker}
        )
        await self._record(
            keys=[self.keys.cb_carrier_calls(), self.keys.cb_carrier_log()],
            args=[idempotency_key(job), sid, entry],
        )
        if self.hang_after_s:
            await asyncio.sleep(self.hang_after_s)
        return sid

    async def find_call(self, job: Job) -> str | None:
        sid = await self.redis.hget(self.keys.cb_carrier_calls(), idempotency_key(job))
        return str(sid) if sid else None

    async def dials(self) -> list[dict[str, object]]:
        raw = await self.redis.lrange(self.keys.cb_carrier_log(), 0, -1)
        return [json.loads(item) for item in raw]
