"""Queue core benchmark against a real Redis (REDIS_URL, default redis://127.0.0.1:6379/0).

1. Baseline: plain EVALSHA round trips per second (a one-line script, one key) from the
   same client, sequentially, in the same run (measured before and after the cycles).
2. Pairing cycles, sequentially, one call at a time, each script call timed on its own:
   a. the issue's cycle (issue #4): join (pairs at once with the ready agent, one script)
      + complete (the agent is ready again): 2 scripts. The agent's answer (reserved ->
      on call; in real life when the agent picks up, from the whisper webhook) has to run
      between them, but it is timed apart and left out of this figure;
   b. the whole life: join + answer + complete, 3 scripts, all timed;
   c. per script call: calls per second over all three, and for each script alone.
   Each is printed as a ratio of the baseline (target for a: at least 0.4).
3. The whole life with several loops in flight (one connection pool), as a ratio of the
   baseline with as many loops in flight; and from the same run, printed as (e) and
   labelled in flight, the issue's cycle in flight: each loop's join and complete timed as
   in 2a (the answer between them timed apart, still run, so still loading Redis and the
   client), summed over the loops, as a ratio of the baseline with as many in flight. The
   sequential figure 2a stays the issue's figure.
4. Per call of join, answer and complete: Redis's own time (INFO commandstats, EVALSHA
   and FCALL,
   over a batch of calls of that script alone; other clients of the same Redis inflate
   it) and this process's CPU time (time.process_time), beside a plain EVALSHA's.
6. The floor (f): how close to the target any routing code could come on this machine and
   client. A cycle of the fewest Redis commands a join+pair and a complete can be made of
   (8 commands each in a one-line-per-command script: the call and agent records, the
   ready set, the lease and one or two counters; none of the routing: no priorities,
   queues, overflow, strategies, ended-call idempotency or interval check), timed like (a),
   in short rounds that alternate with the baseline and with the issue's cycle itself, so
   all three see the same machine; printed as each round's ratios' medians.
5. Pairing latency with 10,000 callers waiting and 500 agents (4 queues, mixed skills,
   priorities): every agent on a call; each measured operation is a `complete` that frees
   the agent and pairs it with the best waiting call in the same script; the queue is
   topped up so 10,000 stay waiting. Latency is the client's round trip; Redis's own time
   per script call (complete, answer and top-up joins together) from INFO commandstats.

The baseline and the store share one client, made as the service makes it
(`config.redis_conn.connect`: redis-py with hiredis's reply parser and command packer), so
both sides of every ratio take the same client path.

Usage: .venv/bin/python bench/queue_bench.py [--cycles 3000] [--samples 3000] [--json]
Keys use a fresh prefix and are deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config.calendar import Calendar, TimeRange  # noqa: E402
from config.keys import Keys  # noqa: E402
from config.queues import QueuesConfig, load_queues_text  # noqa: E402
from config.redis_conn import connect  # noqa: E402
from queueing.store import QueueStore, RedisClient  # noqa: E402


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


@dataclass
class CycleTimes:
    """Seconds spent in each script's calls during the cycles, summed."""

    cycles: int = 0
    join_s: float = 0.0
    answer_s: float = 0.0
    complete_s: float = 0.0


async def timed_cycles(store: QueueStore, n: int, tag: str = "CY") -> CycleTimes:
    """`n` calls, one after the other, each through join (pairs at once), answer, complete;
    their CallSids start with `tag` (a CallSid joins once: an ended one is a duplicate)."""
    agent = "a001"  # general only: every join pairs with it at once
    await store.login(agent, ready=True)
    times = CycleTimes()
    clock = time.perf_counter
    for i in range(n):
        t0 = clock()
        joined = await store.join(f"{tag}{i}", "general")
        t1 = clock()
        (pairing,) = joined.pairings
        await store.answer(pairing.call_sid, pairing.reservation)
        t2 = clock()
        await store.complete(pairing.call_sid)
        t3 = clock()
        times.join_s += t1 - t0
        times.answer_s += t2 - t1
        times.complete_s += t3 - t2
        times.cycles += 1
    await store.logout(agent)
    return times


async def parallel_lives(store: QueueStore, n: int, concurrency: int) -> tuple[float, float]:
    """Whole lives (join, answer, complete) per second, `concurrency` loops in flight,
    each with its own agent; and, from the same run, the issue's cycle in flight: each
    loop's join and complete timed as in (a), the answer between them timed apart (the
    answers still load Redis and the client like the other scripts, so the join and
    complete times are taken under the same load as with `concurrency` cycles in flight).
    Returns (whole lives per second, issue cycles per second summed over the loops)."""
    agents = [f"a{i * 10 + 1:03d}" for i in range(concurrency)]
    for agent in agents:
        await store.login(agent, ready=True)
    per = n // concurrency
    clock = time.perf_counter
    cycle_s: list[float] = []  # per loop: seconds in join + complete
    cycles: list[int] = []

    async def loop(tag: str) -> None:
        spent, done = 0.0, 0
        for i in range(per):
            t0 = clock()
            joined = await store.join(f"CP{tag}-{i}", "general")
            spent += clock() - t0
            for pairing in joined.pairings:
                await store.answer(pairing.call_sid, pairing.reservation)
                t1 = clock()
                await store.complete(pairing.call_sid)
                spent += clock() - t1
                done += 1
        cycle_s.append(spent)
        cycles.append(done)

    start = clock()
    await asyncio.gather(*(loop(str(j)) for j in range(concurrency)))
    rate = per * concurrency / (clock() - start)
    for agent in agents:
        await store.logout(agent)
    issue = sum(c / s for c, s in zip(cycles, cycle_s, strict=True) if s > 0)
    return rate, issue


# The floor's two operations: only the commands a join that pairs at once and a complete
# cannot do without. KEYS: calls hash, ready set, agents hash, leases set, statistics hash.
FLOOR_JOIN = """
local t = redis.call('TIME')
local now = t[1] * 1000
local c = redis.call('HGET', KEYS[1], ARGV[1])
local a = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
local rec = {q='general', p=2, j=now, st='reserved', a=a, res=1}
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(rec))
redis.call('HSET', KEYS[3], a, cjson.encode({s='reserved', call=ARGV[1], since=now}))
redis.call('ZREM', KEYS[2], a)
redis.call('ZADD', KEYS[4], now + 30000, ARGV[1])
redis.call('HINCRBY', KEYS[5], 'offered', 1)
return cjson.encode({ok=true, state='reserved',
                     pairings={{call_sid=ARGV[1], agent=a, reservation=1}}})
"""
FLOOR_COMPLETE = """
local t = redis.call('TIME')
local now = t[1] * 1000
local c = cjson.decode(redis.call('HGET', KEYS[1], ARGV[1]))
redis.call('HINCRBY', KEYS[5], 'handled', 1)
redis.call('HINCRBY', KEYS[5], 'talk_ms', 1000)
redis.call('HSET', KEYS[3], c.a, cjson.encode({s='ready', since=now}))
redis.call('ZADD', KEYS[2], now, c.a)
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return cjson.encode({ok=true, agent_state='ready', pairings={}})
"""


async def floor_rounds(
    store: QueueStore, prefix: str, rounds: int, per_round: int
) -> dict[str, Any]:
    """(f): rounds of baseline, the issue's cycle (as in (a)), the floor's cycle and the
    baseline again; each cycle's ratio to its round's baseline (the mean of the two)."""
    redis = store.redis
    keys = [f"{prefix}{{floor}}:{name}" for name in ("calls", "ready", "agents", "leases", "stat")]
    join, complete = redis.register_script(FLOOR_JOIN), redis.register_script(FLOOR_COMPLETE)
    await redis.zadd(keys[1], {"a1": 1})
    clock = time.perf_counter
    issue_ratios: list[float] = []
    floor_ratios: list[float] = []
    for r in range(rounds):
        before = await baseline(redis, keys[0], per_round * 2)
        times = await timed_cycles(store, per_round, tag=f"FR{r}-")
        issue = times.cycles / (times.join_s + times.complete_s)
        t0 = clock()
        for i in range(per_round):
            sid = f"FL{r}-{i}"
            json.loads(await join(keys=keys, args=[sid]))
            json.loads(await complete(keys=keys, args=[sid]))
        floor = per_round / (clock() - t0)
        after = await baseline(redis, keys[0], per_round * 2)
        base = (before + after) / 2
        issue_ratios.append(issue / base)
        floor_ratios.append(floor / base)
    return {
        "rounds": rounds,
        "cycles_per_round": per_round,
        "floor_ratio_median": round(statistics.median(floor_ratios), 3),
        "floor_ratio_range": [round(min(floor_ratios), 3), round(max(floor_ratios), 3)],
        "issue_ratio_median": round(statistics.median(issue_ratios), 3),
        "issue_ratio_range": [round(min(issue_ratios), 3), round(max(issue_ratios), 3)],
        "issue_of_floor": round(
            statistics.median(i / f for i, f in zip(issue_ratios, floor_ratios, strict=True)), 3
        ),
    }


async def commandstats(redis: RedisClient) -> dict[str, Any]:
    """Calls and microseconds of EVALSHA and FCALL together (the store runs its operations
    as functions on Redis 7, as scripts on 6.2)."""
    info = await redis.info("commandstats")
    out = {"calls": 0, "usec": 0}
    for name in ("cmdstat_evalsha", "cmdstat_fcall"):
        for field in out:
            out[field] += int(info.get(name, {}).get(field, 0))
    return out


async def per_script_costs(store: QueueStore, rounds: int) -> dict[str, dict[str, float]]:
    """Redis time and client CPU per call of join, answer and complete, each over a batch
    of that script alone: every agent ready, one call per agent joins (pairs at once),
    all are answered, all complete; `rounds` times."""
    agents = list(store.config.agents)
    for agent in agents:
        await store.login(agent, ready=True)
    totals = {name: [0.0, 0.0, 0.0] for name in ("join", "answer", "complete")}

    async def batch(name: str, calls: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
        before = await commandstats(store.redis)
        cpu = time.process_time()
        out = [await call() for call in calls]
        cpu = time.process_time() - cpu
        after = await commandstats(store.redis)
        total = totals[name]
        total[0] += after.get("calls", 0) - before.get("calls", 0)
        total[1] += after.get("usec", 0) - before.get("usec", 0)
        total[2] += cpu
        return out

    done = 0
    for r in range(rounds):
        sids = [f"PS{r}-{i}" for i in range(len(agents))]
        joined = await batch("join", [partial(store.join, sid, "general") for sid in sids])
        pairings = [p for j in joined for p in j.pairings]
        if len(pairings) != len(agents):
            raise RuntimeError(f"{len(pairings)} of {len(agents)} joins paired at once")
        answers = [partial(store.answer, p.call_sid, p.reservation) for p in pairings]
        await batch("answer", answers)
        await batch("complete", [partial(store.complete, p.call_sid) for p in pairings])
        done += len(agents)
    for agent in agents:
        await store.logout(agent)
    return {
        name: {
            "redis_usec_per_call": round(usec / calls, 1) if calls else 0.0,
            "client_cpu_usec_per_call": round(cpu / done * 1e6, 1),
        }
        for name, (calls, usec, cpu) in totals.items()
    }


async def plain_costs(redis: RedisClient, key: str, n: int) -> dict[str, float]:
    script = redis.register_script("return 1")
    await script(keys=[key])
    before = await commandstats(redis)
    cpu = time.process_time()
    for _ in range(n):
        await script(keys=[key])
    cpu = time.process_time() - cpu
    after = await commandstats(redis)
    calls = after.get("calls", 0) - before.get("calls", 0)
    usec = after.get("usec", 0) - before.get("usec", 0)
    return {
        "redis_usec_per_call": round(usec / calls, 1) if calls else 0.0,
        "client_cpu_usec_per_call": round(cpu / n * 1e6, 1),
    }


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


def build_report(
    base: float, base_after: float, times: CycleTimes, extra: dict[str, Any]
) -> dict[str, Any]:
    rate = (base + base_after) / 2
    n = times.cycles
    issue = n / (times.join_s + times.complete_s)
    life = n / (times.join_s + times.answer_s + times.complete_s)
    return {
        "evalsha_per_s": round(rate),
        "evalsha_per_s_before_after": [round(base), round(base_after)],
        "issue_cycle": {
            "scripts": ["join (pairs at once)", "complete"],
            "not_timed": "answer (runs in between, timed apart)",
            "cycles_per_s": round(issue),
            "ratio": round(issue / rate, 3),
            "target_ratio": 0.4,
        },
        "whole_life": {
            "scripts": ["join (pairs at once)", "answer", "complete"],
            "cycles_per_s": round(life),
            "ratio": round(life / rate, 3),
        },
        "per_script": {
            "calls_per_s": round(3 * life),
            "ratio": round(3 * life / rate, 3),
            "join_ratio": round(n / times.join_s / rate, 3),
            "answer_ratio": round(n / times.answer_s / rate, 3),
            "complete_ratio": round(n / times.complete_s / rate, 3),
        },
        **extra,
    }


def print_report(r: dict[str, Any]) -> None:
    issue, life, per = r["issue_cycle"], r["whole_life"], r["per_script"]
    lat, c = r["latency"], r["concurrency"]
    print(f"client: {r['client']}; routing operations run as {r['engine']}")
    print(
        f"plain EVALSHA round trips: {r['evalsha_per_s']}/s"
        f" (before, after the cycles: {r['evalsha_per_s_before_after']})"
    )
    print(
        f"(a) issue #4 cycle, join+pair and complete (2 scripts; the agent's answer runs in"
        f" between, timed apart, not counted): {issue['cycles_per_s']}/s"
        f" = {issue['ratio']} x EVALSHA rate (target >= 0.4)"
    )
    print(
        f"(b) whole life, join+pair, answer, complete (3 scripts): {life['cycles_per_s']}/s"
        f" = {life['ratio']} x EVALSHA rate (at most 0.33 with 3 scripts)"
    )
    print(
        f"(c) per script call: {per['calls_per_s']}/s = {per['ratio']} x EVALSHA rate"
        f" (join {per['join_ratio']}, answer {per['answer_ratio']},"
        f" complete {per['complete_ratio']})"
    )
    print(
        f"    with {c} in flight: EVALSHA {r['evalsha_per_s_parallel']}/s, whole lives"
        f" {r['whole_life_per_s_parallel']}/s = {r['whole_life_ratio_parallel']} x"
    )
    print(
        f"(e) IN FLIGHT, not the sequential figure (a): issue #4 cycle with {c} loops in flight"
        f" (join+pair and complete timed per loop, the answer timed apart as in (a)):"
        f" {r['issue_cycle_per_s_parallel']}/s = {r['issue_cycle_ratio_parallel']} x EVALSHA"
        f" rate with {c} in flight"
    )
    f = r["floor"]
    print(
        f"(f) FLOOR on this machine and client ({f['rounds']} alternating rounds of"
        f" {f['cycles_per_round']}): a cycle of the fewest commands a join+pair and a complete"
        f" can be (8 each, no routing logic) = {f['floor_ratio_median']} x EVALSHA rate"
        f" (rounds {f['floor_ratio_range'][0]}-{f['floor_ratio_range'][1]}); the issue's cycle"
        f" in the same rounds {f['issue_ratio_median']} (rounds {f['issue_ratio_range'][0]}-"
        f"{f['issue_ratio_range'][1]}), {f['issue_of_floor']} of the floor"
    )
    parts = [
        f"{name} {v['redis_usec_per_call']} us Redis + {v['client_cpu_usec_per_call']} us"
        " client CPU"
        for name, v in r["script_costs"].items()
    ]
    print("    per call: " + "; ".join(parts))
    print(
        f"(d) pairing latency, {lat['waiting']} waiting, {lat['agents']} agents:"
        f" p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms (target < 5),"
        f" max {lat['max_ms']} ms; Redis time per script {lat['redis_usec_per_script']} us"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=3000)
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--waiting", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8, help="for the parallel figure")
    parser.add_argument("--cost-rounds", type=int, default=4, help="batches per script")
    parser.add_argument("--floor-rounds", type=int, default=12, help="for the floor (f)")
    parser.add_argument("--floor-cycles", type=int, default=300, help="cycles per floor round")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    redis = connect(url)  # the service's client, for the baseline and the store alike
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    keys = Keys(prefix=prefix)
    try:
        store = QueueStore(redis, keys, bench_config(args.agents), group="bench")
        await store.sync_clock()
        n, c, key = args.cycles, args.concurrency, keys.route_seq("bench")
        base = await baseline(redis, key, n * 3)
        times = await timed_cycles(store, n)
        base_after = await baseline(redis, key, n * 3)
        base_par = await baseline(redis, key, n * 3, c)
        life_par, issue_par = await parallel_lives(store, n, c)
        floor = await floor_rounds(store, prefix, args.floor_rounds, args.floor_cycles)
        costs = await per_script_costs(store, args.cost_rounds)
        costs["plain EVALSHA"] = await plain_costs(redis, key, n)
        lat = await latency(store, args.waiting, args.samples, seed=7)
        pool_class = redis.connection_pool.connection_class.__name__
        extra = {
            "client": f"config.redis_conn.connect ({pool_class}), baseline and store alike",
            "concurrency": c,
            "evalsha_per_s_parallel": round(base_par),
            "whole_life_per_s_parallel": round(life_par),
            "whole_life_ratio_parallel": round(life_par / base_par, 3),
            "issue_cycle_per_s_parallel": round(issue_par),
            "issue_cycle_ratio_parallel": round(issue_par / base_par, 3),
            "engine": store.engine,
            "floor": floor,
            "script_costs": costs,
            "latency": lat,
        }
        report = build_report(base, base_after, times, extra)
        if args.json:
            print(json.dumps(report))
        else:
            print_report(report)
    finally:
        async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
            await redis.unlink(key)
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
