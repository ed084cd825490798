"""Batch claims racing each other: every due job goes to exactly one claimer, once."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import redis.asyncio as aioredis

from callbacks.jobs import JobState
from callbacks.store import CallbackStore, ClaimMode
from config.calling import CallingConfig
from config.keys import Keys
from tests.callbacks.conftest import new_job
from tests.redis_clients import open_client


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
    clients = [await open_client(redis_url) for _ in range(4)]
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


async def test_one_batch_holds_every_claim_mode(
    redis: aioredis.Redis, keys: Keys, calling: CallingConfig
) -> None:
    limits = replace(calling.limits, lease_s=1.0, call_timeout_s=1.0)
    store = CallbackStore(redis, keys, limits)
    now = await store.now_ms()
    stuck = await store.create(new_job(now - 10, phone="+8613800000003"))
    ringing = await store.create(new_job(now - 10, phone="+8613800000004"))
    _, first = await store.claim(max_jobs=5, calls_per_second=100, burst=100)
    lease = {c.job.id: c.lease for c in first}
    assert set(lease) == {stuck.id, ringing.id}
    assert (await store.mark_started(ringing.id, lease[ringing.id], "CA" + "4" * 32))[0]
    await asyncio.sleep(1.1)  # the dialling lease and the call's status deadline expire
    fresh = await store.create(new_job(await store.now_ms() - 5, phone="+8613800000001"))
    blocked = await store.create(new_job(await store.now_ms() - 5, phone="+8613800000002"))
    later = await store.create(new_job(await store.now_ms() + 60_000, phone="+8613800000005"))
    await store.dnc_add(["+8613800000002"])
    _, claims = await store.claim(max_jobs=10, calls_per_second=100, burst=100)
    modes = {c.job.id: c.mode for c in claims}
    assert modes == {
        fresh.id: ClaimMode.NEW,
        blocked.id: ClaimMode.DNC,
        stuck.id: ClaimMode.RECOVER,
        ringing.id: ClaimMode.STALE,
    }
    recovered = next(c for c in claims if c.job.id == stuck.id)
    assert recovered.old_mark == f"pending:{lease[stuck.id]}" and recovered.dial_uncertain
    cancelled = await store.get(blocked.id)
    assert cancelled is not None and cancelled.state is JobState.CANCELLED
    assert await redis.zrange(keys.cb_due(), 0, -1) == [later.id]
    deadlines = dict(await redis.zrange(keys.cb_leases(), 0, -1, withscores=True))
    assert set(deadlines) == {fresh.id, stuck.id, ringing.id}
    assert min(deadlines.values()) > claims[0].claimed_ms
