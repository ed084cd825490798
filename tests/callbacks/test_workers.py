"""Several workers, one Redis: never the same job twice, a killed worker loses nothing,
and the outbound rate limit holds across workers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from callbacks.jobs import JobKind, JobState
from callbacks.recording_dialer import RecordingDialer
from callbacks.scheduler import Scheduler
from callbacks.store import CallbackStore, JobFilter
from config.calling import CallingConfig
from config.keys import Keys
from tests.redis_clients import open_client

ROOT = Path(__file__).resolve().parents[2]


async def seed(
    redis: aioredis.Redis, keys: Keys, store: CallbackStore, count: int, due_ms: int
) -> None:
    """Schedule `count` jobs through the store's create script (concurrently, in chunks)."""
    from tests.callbacks.conftest import new_job

    for start in range(0, count, 50):
        await asyncio.gather(
            *(
                store.create(new_job(due_ms, phone=f"+86139{i:08d}", kind=JobKind.SURVEY))
                for i in range(start, min(count, start + 50))
            )
        )


def spawn(url: str, prefix: str, name: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.callbacks.worker_proc", url, prefix, name, *extra],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def dial_counts(redis: aioredis.Redis, keys: Keys) -> Counter[str]:
    log = await redis.lrange(keys.cb_carrier_log(), 0, -1)  # type: ignore[misc]
    return Counter(json.loads(item)["job"] for item in log)


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_three_processes_never_dial_a_job_twice(
    redis: aioredis.Redis, keys: Keys, store: CallbackStore, redis_url: str, key_prefix: str
) -> None:
    count = 10_000
    await seed(redis, keys, store, count, await store.now_ms())
    procs = [spawn(redis_url, key_prefix, f"w{i}", "--until-idle") for i in range(3)]
    try:
        for proc in procs:
            await asyncio.to_thread(proc.wait, 80)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert all(p.returncode == 0 for p in procs)
    counts = await dial_counts(redis, keys)
    assert len(counts) == count
    assert max(counts.values()) == 1
    workers = Counter(
        json.loads(x)["w"]
        for x in await redis.lrange(keys.cb_carrier_log(), 0, -1)  # type: ignore[misc]
    )
    assert len(workers) >= 2, workers  # the work was really shared
    assert await store.due_count() == 0


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_two_asyncio_workers_never_dial_a_job_twice(
    redis: aioredis.Redis, keys: Keys, store: CallbackStore, redis_url: str, calling: CallingConfig
) -> None:
    count = 10_000
    await seed(redis, keys, store, count, await store.now_ms())
    clients = [await open_client(redis_url) for _ in range(2)]
    try:
        scheds = [
            Scheduler(
                CallbackStore(c, keys, calling.limits),
                RecordingDialer(c, keys, worker=f"a{i}"),
                calling,
            )
            for i, c in enumerate(clients)
        ]

        async def drain(s: Scheduler) -> None:
            idle = 0
            while idle < 3:
                idle = 0 if await s.run_once() else idle + 1

        await asyncio.gather(*(drain(s) for s in scheds))
    finally:
        for c in clients:
            await c.aclose()
    counts = await dial_counts(redis, keys)
    assert len(counts) == count and max(counts.values()) == 1


@pytest.mark.parametrize(
    ("flag", "dialled_before_kill"),
    [("--hang-before", False), ("--hang-after", True)],
    ids=["killed-before-dial", "killed-after-dial"],
)
@pytest.mark.timeout(40)
async def test_killed_worker_loses_nothing_and_dials_nothing_twice(
    redis: aioredis.Redis,
    keys: Keys,
    store: CallbackStore,
    redis_url: str,
    key_prefix: str,
    calling: CallingConfig,
    flag: str,
    dialled_before_kill: bool,
) -> None:
    count = 50
    await seed(redis, keys, store, count, await store.now_ms())
    proc = spawn(
        redis_url, key_prefix, "doomed", flag, "600", "--lease", "1", "--concurrency", "60"
    )
    try:
        # wait until the doomed worker has claimed everything (and dialled, if it does)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            dialled = len(await dial_counts(redis, keys))
            if await store.due_count() == 0 and (not dialled_before_kill or dialled == count):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the worker did not claim the jobs")
    finally:
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait, 10)
    before = await dial_counts(redis, keys)
    assert len(before) == (count if dialled_before_kill else 0)

    # a healthy worker takes over once the leases (1 s) expire
    fast = replace(calling, limits=replace(calling.limits, lease_s=1.0))
    survivor = Scheduler(
        CallbackStore(redis, keys, fast.limits), RecordingDialer(redis, keys), fast
    )
    await asyncio.sleep(1.1)
    handled = 0
    deadline = time.monotonic() + 10
    while handled < count and time.monotonic() < deadline:
        handled += await survivor.run_once()
    assert handled == count
    after = await dial_counts(redis, keys)
    assert len(after) == count and max(after.values()) == 1  # every job dialled exactly once
    page, _ = await store.search(JobFilter(), limit=200)
    assert len(page) == count
    assert all(j.state is JobState.IN_PROGRESS and j.attempt == 1 for j in page)
    sids = {
        str(json.loads(x)["job"]): json.loads(x)["sid"]
        for x in await redis.lrange(keys.cb_carrier_log(), 0, -1)
    }  # type: ignore[misc]
    assert all(j.call_sid == sids[j.id] for j in page)  # reconciled to the real call


@pytest.mark.timeout(30)
async def test_rate_limit_holds_with_three_workers(
    redis: aioredis.Redis, keys: Keys, store: CallbackStore, redis_url: str, calling: CallingConfig
) -> None:
    cps, burst, seconds = 20.0, 2, 3.0
    limited = replace(calling, calls_per_second=cps, burst=burst)
    await seed(redis, keys, store, 500, await store.now_ms())
    clients = [await open_client(redis_url) for _ in range(3)]
    scheds = [
        Scheduler(
            CallbackStore(c, keys, limited.limits),
            RecordingDialer(c, keys, worker=f"r{i}"),
            limited,
            poll_s=0.01,
        )
        for i, c in enumerate(clients)
    ]
    try:
        for s in scheds:
            s.start()
        await asyncio.sleep(seconds)
    finally:
        for s in scheds:
            await s.stop()
        for c in clients:
            await c.aclose()
    log = [json.loads(x) for x in await redis.lrange(keys.cb_carrier_log(), 0, -1)]  # type: ignore[misc]
    times = sorted(float(e["t"]) for e in log)
    assert len({e["w"] for e in log}) == 3  # all three took part
    # total: at most burst + cps * elapsed (a little slack for the claim-to-dial delay)
    assert len(times) <= burst + cps * seconds + 2
    assert len(times) >= cps * seconds * 0.7
    # any one-second window: at most cps + burst dials
    for i, start in enumerate(times):
        in_window = sum(1 for t in times[i:] if t < start + 1.0)
        assert in_window <= cps + burst + 1, (in_window, start)
