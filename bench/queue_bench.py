"""Queue core benchmark against a real Redis (REDIS_URL, default redis://127.0.0.1:6379/0).

1. Baseline: plain EVALSHA round trips per second (a one-line script, one key) from the
   same client, sequentially, in the same run.
2. Pairing cycle rate: one call through its whole life, sequentially: join (pairs at once
   with the ready agent, one script) + answer + complete (the agent is ready again).
   Printed as cycles/s and as a ratio of the baseline; a cycle is 3 script round trips.
3. Pairing latency with 10,000 callers waiting and 500 agents (4 queues, mixed skills,
   priorities): every agent on a call; each measured operation is a `complete` that frees
   the agent and pairs it with the best waiting call in the same script; the queue is
   topped up so 10,000 stay waiting. Latency is the client's round trip; Redis's own time
   per script call comes from INFO commandstats.

Usage: .venv/bin/python bench/queue_bench.py [--cycles 3000] [--samples 3000] [--json]
Keys use a fresh prefix and are deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config.calendar import Calendar, TimeRange  # noqa: E402
from config.keys import Keys  # noqa: E402
from config.queues import QueuesConfig, load_queues_text  # noqa: E402
from queueing.store import QueueStore  # noqa: E402


def _always() -> dict[str, Calendar]:
    from datetime import time as dtime

    day = (TimeRange(dtime(0, 0), dtime.max),)
    cal = Calendar("always", "UTC", tuple(day for _ in range(7)), frozenset())
    return {"always": cal}


def bench_config(agents: int) -> QueuesConfig:
    lines = [
        "routing: {reserve_lease_s: 30, ring_timeout_s: 30}",
        "queues:",
        "  general: {calendar: always, skills: {general: 1}, priority: 2, wrap_up_s: 0}",
        "  cards: {calendar: always, skills: {cards: 1}, priority: 7, wrap_up_s: 0,",
        "          strategy: skill_level, overflow_after_s: 60, overflow_to: general}",
        "  complaints: {calendar: always, skills: {complaints: 1}, priority: 4, wrap_up_s: 0,",
        "               strategy: fewest_calls}",
        "  vip: {calendar: always, team: care, priority: 9, wrap_up_s: 0,",
        "        overflow_after_s: 20, overflow_to: general}",
        "agents:",
    ]
    for i in range(agents):
        skills = ["general: 2"]
        if i % 3 == 0:
            skills.append(f"cards: {1 + i % 5}")
        if i % 4 == 0:
            skills.append("complaints: 2")
        team = ", team: care" if i % 10 == 0 else ""
        lines.append(
            f"  a{i:03d}: {{name: A{i}, phone: '+1555{i:07d}', "
            f"skills: {{{', '.join(skills)}}}{team}}}"
        )
    return load_queues_text("\n".join(lines) + "\n", "bench.yaml", _always())


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def baseline(redis: aioredis.Redis, key: str, n: int, concurrency: int = 1) -> float:
    script = redis.register_script("return 1")
    await script(keys=[key])

    async def loop(count: int) -> None:
        for _ in range(count):
            await script(keys=[key])

    start = time.perf_counter()
    await asyncio.gather(*(loop(n // concurrency) for _ in range(concurrency)))
    return (n // concurrency * concurrency) / (time.perf_counter() - start)


async def cycles(store: QueueStore, n: int, concurrency: int = 1) -> float:
    """`concurrency` independent loops, each with its own agent in its own queue slot."""
    agents = [f"a{i * 10 + 1:03d}" for i in range(concurrency)]  # general-only agents
    for agent in agents:
        await store.login(agent, ready=True)
    per = n // concurrency

    async def loop(tag: str) -> None:
        for i in range(per):
            joined = await store.join(f"CY{tag}-{i}", "general")
            for pairing in joined.pairings:
                await store.answer(pairing.call_sid, pairing.reservation)
                await store.complete(pairing.call_sid)

    start = time.perf_counter()
    await asyncio.gather(*(loop(f"{concurrency}-{j}") for j in range(concurrency)))
    rate = per * concurrency / (time.perf_counter() - start)
    for agent in agents:
        await store.logout(agent)
    return rate


async def commandstats(redis: aioredis.Redis) -> dict[str, Any]:
    info = await redis.info("commandstats")
    return dict(info.get("cmdstat_evalsha", {}))


async def latency(store: QueueStore, waiting: int, samples: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    redis = store.redis
    queues = ["general"] * 6 + ["cards"] * 2 + ["complaints"] + ["vip"]
    counter = 0

    async def join_one() -> None:
        nonlocal counter
        counter += 1
        await store.join(f"LQ{counter}", rng.choice(queues), priority=None, pair=False)

    # 500 agents on calls: let each take one call, answer it
    agents = list(store.config.agents)
    on_call: dict[str, str] = {}
    for agent in agents:
        await store.login(agent, ready=True)
    for _ in range(len(agents) * 2):
        await join_one()
        for p in await store.pair():
            await store.answer(p.call_sid, p.reservation)
            on_call[p.agent_id] = p.call_sid
    busy = [a for a in agents if a in on_call]
    # top up to `waiting` callers (pipelined joins without pairing: nobody is ready)
    t0 = time.perf_counter()
    while await store.waiting_total() < waiting:
        await asyncio.gather(*(join_one() for _ in range(50)))
    fill_s = time.perf_counter() - t0
    before = await commandstats(redis)
    lat: list[float] = []
    paired = 0
    for _ in range(samples):
        agent = rng.choice(busy)
        sid = on_call[agent]
        start = time.perf_counter()
        done = await store.complete(sid)  # agent ready -> pairs with the best call
        lat.append((time.perf_counter() - start) * 1000)
        for p in done.pairings:
            paired += 1
            await store.answer(p.call_sid, p.reservation)
            on_call[p.agent_id] = p.call_sid
        await join_one()  # keep `waiting` callers queued
    after = await commandstats(redis)
    calls = after.get("calls", 0) - before.get("calls", 0)
    usec = after.get("usec", 0) - before.get("usec", 0)
    return {
        "waiting": await store.waiting_total(),
        "agents": len(agents),
        "agents_on_call": len(busy),
        "samples": samples,
        "paired": paired,
        "fill_s": round(fill_s, 1),
        "p50_ms": round(pct(lat, 0.50), 3),
        "p99_ms": round(pct(lat, 0.99), 3),
        "max_ms": round(max(lat), 3),
        "redis_usec_per_script": round(usec / calls, 1) if calls else None,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=3000)
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--waiting", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8, help="for the parallel figure")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    redis = aioredis.Redis.from_url(url, decode_responses=True)
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    keys = Keys(prefix=prefix)
    try:
        store = QueueStore(redis, keys, bench_config(args.agents), group="bench")
        await store.sync_clock()
        base = await baseline(redis, keys.route_seq("bench"), args.cycles * 3)
        cycle_rate = await cycles(store, args.cycles)
        base_after = await baseline(redis, keys.route_seq("bench"), args.cycles * 3)
        base_rate = (base + base_after) / 2
        c = args.concurrency
        base_par = await baseline(redis, keys.route_seq("bench"), args.cycles * 3, c)
        cycle_par = await cycles(store, args.cycles, c)
        lat = await latency(store, args.waiting, args.samples, seed=7)
        report = {
            "evalsha_per_s": round(base_rate),
            "cycles_per_s": round(cycle_rate),
            "cycle_ratio": round(cycle_rate / base_rate, 3),
            "cycle_round_trips": 3,
            "per_round_trip_ratio": round(cycle_rate * 3 / base_rate, 3),
            "concurrency": c,
            "evalsha_per_s_parallel": round(base_par),
            "cycles_per_s_parallel": round(cycle_par),
            "cycle_ratio_parallel": round(cycle_par / base_par, 3),
            "latency": lat,
        }
        if args.json:
            print(json.dumps(report))
        else:
            print(f"plain EVALSHA round trips: {report['evalsha_per_s']}/s")
            print(
                f"pairing cycles (join+pair, answer, complete): {report['cycles_per_s']}/s"
                f" = {report['cycle_ratio']} x EVALSHA rate (target >= 0.4);"
                f" per script round trip {report['per_round_trip_ratio']} x"
            )
            print(
                f"with {c} in flight: EVALSHA {report['evalsha_per_s_parallel']}/s, cycles"
                f" {report['cycles_per_s_parallel']}/s = {report['cycle_ratio_parallel']} x"
            )
            print(
                f"pairing latency, {lat['waiting']} waiting, {lat['agents']} agents:"
                f" p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms (target < 5),"
                f" max {lat['max_ms']} ms; Redis time per script {lat['redis_usec_per_script']} us"
            )
    finally:
        async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
            await redis.unlink(key)
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
