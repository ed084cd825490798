"""The "dial recorded" step in batches: one script call for the dials that finish
together, each item checked on its own lease, results in order, early statuses kept."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from callbacks.jobs import JobState
from callbacks.recording_dialer import RecordingDialer
from callbacks.scheduler import Scheduler, StartBatcher
from callbacks.store import CallbackStore, JobFilter
from config.calling import CallingConfig
from config.keys import Keys
from tests.callbacks.conftest import new_job


class CountingStore:
    """Wraps the store to count `mark_started_many` calls and their sizes."""

    def __init__(self, store: CallbackStore) -> None:
        self.store = store
        self.sizes: list[int] = []

    async def mark_started_many(self, items: Any) -> Any:
        self.sizes.append(len(items))
        return await self.store.mark_started_many(items)


async def test_many_items_in_one_call_each_on_its_own_lease(store: CallbackStore) -> None:
    now = await store.now_ms()
    for i in range(5):
        await store.create(new_job(now - 10, phone=f"+861380000000{i}"))
    _, claims = await store.claim(max_jobs=10, calls_per_second=1000, burst=1000)
    assert len(claims) == 5
    assert await store.park_early_status("CA" + "e" * 32, "busy", None)
    items = [(c.job.id, c.lease, "CA" + f"{i:x}" * 32) for i, c in enumerate(claims)]
    items[1] = (items[1][0], "not-the-lease", items[1][2])
    items[3] = (items[3][0], items[3][1], "CA" + "e" * 32)  # its busy status came first
    results = await store.mark_started_many(items)
    assert [ok for ok, _ in results] == [True, False, True, True, True]
    assert results[3][1] == {"status": "busy", "answered_by": ""}
    assert [r[1] for i, r in enumerate(results) if i != 3] == [None] * 4
    for i, (job_id, _, sid) in enumerate(items):
        job = await store.get(job_id)
        assert job is not None
        if i == 1:
            assert job.state is JobState.DIALLING and job.call_sid is None
        else:
            assert job.state is JobState.IN_PROGRESS and job.call_sid == sid
            assert await store.job_for_call(sid) == job_id
    assert await store.mark_started_many([]) == []


async def test_concurrent_dispatches_share_script_calls(
    store: CallbackStore, redis: aioredis.Redis, keys: Keys, calling: CallingConfig
) -> None:
    now = await store.now_ms()
    for i in range(40):
        await store.create(new_job(now - 10, phone=f"+86138000001{i:02d}"))
    sched = Scheduler(store, RecordingDialer(redis, keys), calling, batch=100, concurrency=40)
    counting = CountingStore(store)
    sched._starts = StartBatcher(counting, max_batch=100)  # type: ignore[arg-type]
    assert await sched.run_once() == 40
    assert sum(counting.sizes) == 40
    assert len(counting.sizes) < 40, counting.sizes  # batched, not one call per dial
    jobs, _ = await store.search(JobFilter(), limit=100)
    assert {j.state for j in jobs} == {JobState.IN_PROGRESS}


async def test_a_failed_batch_fails_its_waiters_and_the_next_batch_runs(
    store: CallbackStore,
) -> None:
    class Flaky:
        calls = 0

        async def mark_started_many(self, items: Any) -> Any:
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise ConnectionError("redis went away")
            return [(True, None) for _ in items]

    batcher = StartBatcher(Flaky(), max_batch=2)  # type: ignore[arg-type]
    results = await asyncio.gather(
        *(batcher.mark(f"j{i}", "lease", f"sid{i}") for i in range(4)), return_exceptions=True
    )
    assert isinstance(results[0], ConnectionError) and isinstance(results[1], ConnectionError)
    assert results[2:] == [(True, None), (True, None)]


async def test_a_claim_that_waits_past_half_its_lease_is_put_back_not_dialled(
    store: CallbackStore, redis: aioredis.Redis, keys: Keys, calling: CallingConfig
) -> None:
    # lease 2 s; each dial holds the only slot 1.2 s, so the second claim waits too long
    assert calling.limits.lease_s == 2.0
    dialer = RecordingDialer(redis, keys, hang_before_s=1.2)
    sched = Scheduler(store, dialer, calling, batch=10, concurrency=1)
    now = await store.now_ms()
    first = await store.create(new_job(now - 20, phone="+8613800000201"))
    second = await store.create(new_job(now - 10, phone="+8613800000202"))
    assert await sched.run_once() == 2
    dials = await dialer.dials()
    assert len(dials) == 1
    jobs = {j.id: j for j in [await store.get(first.id), await store.get(second.id)] if j}
    states = sorted(j.state.value for j in jobs.values())
    assert states == ["in_progress", "scheduled"]
    waiting = next(j for j in jobs.values() if j.state is JobState.SCHEDULED)
    assert waiting.attempt == 0 and waiting.id != dials[0]["job"]
    assert waiting.history[-1].reason == "lease_too_short"
    assert await sched.run_once() == 1  # claimed afresh, dialled once
    assert sorted(str(d["job"]) for d in await dialer.dials()) == sorted(jobs)
