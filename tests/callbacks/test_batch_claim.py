"""Batch claims racing each other: every due job goes to exactly one claimer, once."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from callbacks.jobs import JobState
from callbacks.store import CallbackStore, ClaimMode
from config.calling import CallingConfig
from config.keys import Keys
from tests.callbacks.conftest import new_job


async def test_racing_batch_claims_never_hand_a_job_to_two_workers(
    store: CallbackStore, redis_url: str, keys: Keys, calling: CallingConfig
) -> None:
    now = await store.now_ms()
    jobs = 600
    for start in range(0, jobs, 100):
        await asyncio.gather(
            *(
                store.create(new_job(now - 5, phone=f"+86138{i:08d}"))
                for i in range(start, start + 100)
            )
        )
    # four workers, each with its own connection, claiming batches of up to 200 at once
    clients = [aioredis.Redis.from_url(redis_url, decode_responses=True) for _ in range(4)]
    stores = [CallbackStore(c, keys, calling.limits) for c in clients]
    claimed: list[tuple[str, str]] = []  # (job id, lease)

    async def worker(s: CallbackStore) -> None:
        while True:
            _, claims = await s.claim(max_jobs=200, calls_per_second=10_000, burst=10_000)
            if not claims:
                if await s.due_count() == 0:
                    return
                continue
            assert {c.mode for c in claims} == {ClaimMode.NEW}
            claimed.extend((c.job.id, c.lease) for c in claims)

    try:
        await asyncio.gather(*(worker(s) for s in stores))
    finally:
        for c in clients:
            await c.aclose()
    ids = [job_id for job_id, _ in claimed]
    assert len(ids) == jobs and len(set(ids)) == jobs
    for job_id, lease in claimed[:: jobs // 20]:
        job = await store.get(job_id)
        assert job is not None and job.state is JobState.DIALLING and job.attempt == 1
        assert len(job.attempts) == 1
        raw = await store.redis.hget(keys.cb_job(job_id), "dial_mark")
        assert raw == f"pending:{lease}"
