"""Scheduler benchmark: 10,000 jobs due at the same instant, claimed and dialled by N worker
processes through the recording dialer (the carrier's stand-in; the emulator comes later).

Prints jobs claimed+dispatched per second, the same run's baseline of plain Redis round
trips per second (sequential GETs on one connection, and 32 concurrent), the ratio, and
the lateness (dial time - due time) p50/p99/max. Target: p99 under 1 s.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/scheduler_bench.py \
        [--jobs 10000] [--workers 3] [--cps 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callbacks.jobs import JobKind, NewJob  # noqa: E402
from callbacks.recording_dialer import RecordingDialer  # noqa: E402
from callbacks.scheduler import Scheduler  # noqa: E402
from callbacks.store import CallbackStore  # noqa: E402
from config.calling import CallingConfig, parse_calling  # noqa: E402
from config.keys import Keys  # noqa: E402
from config.yamlload import load_yaml_text  # noqa: E402

CONFIG = """
calling:
  window:
    timezone: UTC
    hours: {daily: "00:00-24:00"}
  min_window_left: 0s
  rate_limit: {calls_per_second: 10000, burst: 10000}
  retry:
    survey: {backoff: [1m], max_attempts: 2}
"""


def config(cps: float) -> CallingConfig:
    base = parse_calling(load_yaml_text(CONFIG, "bench"), "bench")
    return replace(base, calls_per_second=cps, burst=int(max(1, cps)))


async def worker(
    url: str, prefix: str, name: str, jobs: int, cps: float, batch: int, concurrency: int
) -> None:
    client = aioredis.Redis.from_url(url, decode_responses=True)
    keys = Keys(prefix=prefix)
    cfg = config(cps)
    store = CallbackStore(client, keys, cfg.limits)
    sched = Scheduler(
        store,
        RecordingDialer(client, keys, worker=name),
        cfg,
        batch=batch,
        concurrency=concurrency,
        poll_s=0.02,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if await sched.run_once() == 0:
                if await client.llen(keys.cb_carrier_log()) >= jobs:  # type: ignore[misc]
                    break
                await asyncio.sleep(0.01)
    finally:
        await client.aclose()


async def baseline(client: aioredis.Redis, key: str, seconds: float = 1.0) -> tuple[float, float]:
    await client.set(key, "x")
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        await client.get(key)
        n += 1
    sequential = n / (time.perf_counter() - start)
    count = 0

    async def loop(stop: float) -> None:
        nonlocal count
        while time.perf_counter() < stop:
            await client.get(key)
            count += 1

    start = time.perf_counter()
    await asyncio.gather(*(loop(start + seconds) for _ in range(32)))
    concurrent = count / (time.perf_counter() - start)
    await client.delete(key)
    return sequential, concurrent


async def main(args: argparse.Namespace) -> None:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    keys = Keys(prefix=prefix)
    client = aioredis.Redis.from_url(url, decode_responses=True)
    cfg = config(args.cps)
    store = CallbackStore(client, keys, replace(cfg.limits, max_jobs=args.jobs + 10))
    try:
        seq, conc = await baseline(client, f"{prefix}baseline")
        # workers start first and poll (as in production); then every job is made due at
        # one instant a little after seeding ends
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--worker",
                url,
                prefix,
                f"w{i}",
                "--jobs",
                str(args.jobs),
                "--cps",
                str(args.cps),
                "--batch",
                str(args.batch),
                "--concurrency",
                str(args.concurrency),
                cwd=ROOT,
            )
            for i in range(args.workers)
        ]
        now = await store.now_ms()
        due_ms = now + 2000 + args.jobs // 2
        for start in range(0, args.jobs, 50):
            await asyncio.gather(
                *(
                    store.create(NewJob(JobKind.SURVEY, f"+86139{i:08d}", due_ms))
                    for i in range(start, min(args.jobs, start + 50))
                )
            )
        ready = await store.now_ms()
        if ready >= due_ms:
            print(f"seeding overran the due time by {ready - due_ms} ms", file=sys.stderr)
        for proc in procs:
            await asyncio.wait_for(proc.wait(), 180)
        log = [json.loads(x) for x in await client.lrange(keys.cb_carrier_log(), 0, -1)]  # type: ignore[misc]
        times = sorted(float(e["t"]) for e in log)
        due_s = due_ms / 1000.0
        late = sorted(t - due_s for t in times)
        per_job: dict[str, int] = {}
        for e in log:
            per_job[str(e["job"])] = per_job.get(str(e["job"]), 0) + 1
        span = times[-1] - max(due_s, times[0] - 0.001) if times else 0.0
        rate = len(times) / span if span > 0 else float("nan")

        def pct(q: float) -> float:
            return late[min(len(late) - 1, int(q * len(late)))]

        print(f"jobs {args.jobs}, workers {args.workers} (processes), cps limit {args.cps:g}")
        print(f"dialled {len(times)} jobs, duplicates {sum(v - 1 for v in per_job.values())}")
        print(f"claimed+dispatched: {rate:,.0f} jobs/s (first to last dial {span:.2f} s)")
        print(f"baseline GET round trips: {seq:,.0f}/s sequential, {conc:,.0f}/s 32-concurrent")
        print(f"ratio jobs/s : sequential round trips/s = {rate / seq:.3f}")
        print(
            f"dial lateness (carrier asked - due): p50 {statistics.median(late) * 1000:.0f} ms,"
            f" p99 {pct(0.99) * 1000:.0f} ms, max {late[-1] * 1000:.0f} ms (target p99 < 1000 ms)"
        )
        # claim lateness: the claim's Redis time (attempt start) - due
        claimed: list[float] = []
        ids = list(per_job)
        for start in range(0, len(ids), 1000):
            async with client.pipeline(transaction=False) as pipe:
                for job_id in ids[start : start + 1000]:
                    pipe.lindex(keys.cb_attempts(job_id), 0)
                for raw in await pipe.execute():
                    if raw:
                        claimed.append((int(json.loads(raw)["at"]) - due_ms) / 1000.0)
        claimed.sort()
        if claimed:
            p99 = claimed[min(len(claimed) - 1, int(0.99 * len(claimed)))]
            print(
                f"claim lateness (claimed under lease - due): p50"
                f" {statistics.median(claimed) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms,"
                f" max {claimed[-1] * 1000:.0f} ms"
            )
    finally:
        batch: list[str] = []
        async for key in client.scan_iter(match=f"{prefix}*", count=2000):
            batch.append(key)
            if len(batch) >= 2000:
                await client.unlink(*batch)
                batch = []
        if batch:
            await client.unlink(*batch)
        await client.aclose()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _, _, url, prefix, name, *rest = sys.argv
        extra = argparse.ArgumentParser()
        extra.add_argument("--jobs", type=int, default=10_000)
        extra.add_argument("--cps", type=float, default=10_000)
        extra.add_argument("--batch", type=int, default=200)
        extra.add_argument("--concurrency", type=int, default=64)
        opts = extra.parse_args(rest)
        asyncio.run(worker(url, prefix, name, opts.jobs, opts.cps, opts.batch, opts.concurrency))
    else:
        parser = argparse.ArgumentParser()
        parser.add_argument("--jobs", type=int, default=10_000)
        parser.add_argument("--workers", type=int, default=3)
        parser.add_argument("--cps", type=float, default=10_000)
        parser.add_argument("--batch", type=int, default=200)
        parser.add_argument("--concurrency", type=int, default=64)
        asyncio.run(main(parser.parse_args()))
