"""Several OS processes share one Redis: no double pairing, no agent with two calls, no
call lost; a process killed in the middle of a pairing loses no call."""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing as mp
import random
import time
from collections import Counter, defaultdict
from typing import Any

import pytest
import redis.asyncio as aioredis

from config.keys import Keys
from config.queues import QueuesConfig, load_queues_text
from queueing.agents import AgentState
from queueing.router import Router
from queueing.store import Pairing, QueueError, QueueStore, StaleReservation
from tests.queueing.test_store_support import CALENDARS
from tests.redis_clients import open_client

PROCESSES = 4
CALLS = 2000
AGENTS = 50
GROUP = "t"


def big_config(lease_s: float = 5.0) -> QueuesConfig:
    lines = [
        f"routing: {{reserve_lease_s: {lease_s}, ring_timeout_s: {lease_s},"
        " sweep_every_s: 0.05, abandoned_list_max: 5000}",
        "queues:",
        "  general: {calendar: always, skills: {general: 1}, priority: 2, wrap_up_s: 0}",
        "  cards: {calendar: always, skills: {cards: 1}, priority: 7, wrap_up_s: 0.02,",
        "          strategy: fewest_calls}",
        "  vip: {calendar: always, team: care, priority: 9, wrap_up_s: 0,",
        "        overflow_after_s: 0.05, overflow_to: general}",
        "agents:",
    ]
    for i in range(AGENTS):
        skills = "{general: 2, cards: 1}" if i % 3 == 0 else "{general: 1}"
        team = ", team: care" if i % 10 == 0 else ""
        lines.append(
            f"  a{i:02d}: {{name: A{i}, phone: '+1555000{i:04d}', skills: {skills}{team}}}"
        )
    return load_queues_text("\n".join(lines) + "\n", "concurrency.yaml", CALENDARS)


class Handler:
    """Plays the IVR and the agents' phones: answers after a moment, hangs up later.
    Answer and completion go through the router, as the IVR's Dial callbacks would, so
    an agent freed by a completion is paired (and dispatched) by this process."""

    def __init__(self, log_key: str, rng: random.Random) -> None:
        self.log_key = log_key
        self.rng = rng
        self.router: Router | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.stale_answers = 0

    async def connect(self, pairing: Pairing) -> None:
        assert self.router is not None
        record = json.dumps([pairing.call_sid, pairing.agent_id, pairing.reservation])
        await self.router.store.redis.rpush(self.log_key, record)
        task = asyncio.create_task(self._talk(self.router, pairing))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _talk(self, router: Router, pairing: Pairing) -> None:
        await asyncio.sleep(self.rng.uniform(0, 0.01))
        try:
            await router.answer(pairing.call_sid, pairing.reservation)
        except StaleReservation:
            self.stale_answers += 1  # the caller hung up while it rang
            return
        await asyncio.sleep(self.rng.uniform(0, 0.02))
        try:
            await router.complete(pairing.call_sid)
        except Exception as exc:
            await router.store.redis.rpush(self.log_key + ":err", repr(exc))
            raise


async def _worker(index: int, url: str, prefix: str, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    redis = await open_client(url)
    store = QueueStore(redis, Keys(prefix=prefix), big_config(), group=GROUP)
    handler = Handler(prefix + "test:connects", rng)
    router = handler.router = Router(store, handler)
    await router.start()
    await redis.set(prefix + f"test:phase:{index}", "started")
    mine = [f"a{i:02d}" for i in range(AGENTS) if i % PROCESSES == index]
    calls = [f"P{index}-{n:04d}" for n in range(CALLS // PROCESSES)]
    errors = Counter[str]()
    stop_churn = asyncio.Event()

    async def churn() -> None:
        while not stop_churn.is_set():
            agent = rng.choice(mine)
            try:
                status = await store.agent(agent)
                if status.state is AgentState.OFFLINE:
                    await router.login(agent, ready=rng.random() < 0.7)
                elif status.state is AgentState.NOT_READY:
                    await router.ready(agent)
                elif status.state is AgentState.WRAP_UP:
                    await router.end_wrap_up(agent)
                elif status.state is AgentState.READY:
                    if rng.random() < 0.5:
                        await router.not_ready(agent, "break")
                    else:
                        await router.logout(agent)
            except QueueError as exc:
                errors[exc.code] += 1  # raced with a pairing: refused, as it should be
            await asyncio.sleep(rng.uniform(0, 0.01))

    async def caller(sid: str) -> None:
        r = rng.random()
        queue = "vip" if r < 0.1 else "cards" if r < 0.3 else "general"
        await router.join(sid, queue, info={"worker": index})
        if rng.random() < 0.1:
            await asyncio.sleep(rng.uniform(0, 0.05))
            with contextlib.suppress(QueueError):
                await router.leave(sid)

    churner = asyncio.create_task(churn())
    callers = []
    for sid in calls:
        callers.append(asyncio.create_task(caller(sid)))
        await asyncio.sleep(rng.uniform(0, 0.004))
    await asyncio.gather(*callers)
    await redis.set(prefix + f"test:phase:{index}", "callers_done")
    await asyncio.sleep(0.2)
    stop_churn.set()
    await churner
    await redis.set(prefix + f"test:phase:{index}", "churn_done")
    # everyone back to work so the queues drain
    for agent in mine:
        with contextlib.suppress(QueueError):
            status = await store.agent(agent)
            if status.state is AgentState.OFFLINE:
                await router.login(agent, ready=True)
            elif status.state is AgentState.NOT_READY:
                await router.ready(agent)
    waiting_key_names = [store.keys.route_waiting(GROUP, q) for q in store.queue_names]
    deadline = time.monotonic() + 30
    await redis.set(prefix + f"test:phase:{index}", "draining")
    while time.monotonic() < deadline:
        busy = await redis.hlen(store.keys.route_calls(GROUP))
        waiting = sum([await redis.zcard(k) for k in waiting_key_names])
        if busy == 0 and waiting == 0 and not handler.tasks:
            break
        await asyncio.sleep(0.05)
    await redis.set(prefix + f"test:phase:{index}", "drained")
    await asyncio.sleep(0.1)
    watchdog = asyncio.create_task(_dump_stacks_after(redis, prefix + f"test:stacks:{index}", 5))
    await router.stop()
    watchdog.cancel()
    await redis.set(prefix + f"test:phase:{index}", "stopped")
    await redis.aclose()
    errors["stale_answers"] = handler.stale_answers
    errors["left_behind"] = busy + waiting
    return dict(errors)


async def _dump_stacks_after(redis: aioredis.Redis, key: str, delay: float) -> None:
    """Diagnostics: if shutting down takes longer than `delay`, record every task's stack."""
    import io

    await asyncio.sleep(delay)
    buf = io.StringIO()
    for task in asyncio.all_tasks():
        task.print_stack(file=buf)
    await redis.set(key, buf.getvalue())


def worker_main(index: int, url: str, prefix: str, seed: int, out: Any) -> None:
    out.put((index, asyncio.run(_worker(index, url, prefix, seed))))


@pytest.mark.slow
async def test_four_processes_2000_calls_50_agents(
    redis: aioredis.Redis, redis_url: str, key_prefix: str
) -> None:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=worker_main, args=(i, redis_url, key_prefix, 1000 + i, out), daemon=True)
        for i in range(PROCESSES)
    ]
    started = time.monotonic()
    for p in procs:
        p.start()
    keys = Keys(prefix=key_prefix)
    finished = asyncio.Event()
    samples: list[int] = []

    async def watch() -> None:
        """Atomic snapshots while the workers run: no agent holds two live calls, and the
        agent's record points back at the call reserved for it."""
        while not finished.is_set():
            pipe = redis.pipeline(transaction=True)
            pipe.hgetall(keys.route_calls(GROUP))
            pipe.hgetall(keys.route_agents(GROUP))
            calls_raw, agents_raw = await pipe.execute()
            holders: Counter[str] = Counter()
            for sid, raw in calls_raw.items():
                c = json.loads(raw)
                if c["st"] in ("reserved", "ringing", "connected"):
                    holders[c["a"]] += 1
                    agent = json.loads(agents_raw[c["a"]])
                    assert agent.get("call") == sid, (sid, c, agent)
                    assert agent["s"] in ("reserved", "on_call"), (sid, c, agent)
            assert not holders or max(holders.values()) == 1, holders.most_common(3)
            samples.append(len(holders))
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    results = []
    for _ in procs:
        while out.empty() and not watcher.done():
            await asyncio.sleep(0.05)
            if time.monotonic() - started > 50:
                phases = [await redis.get(f"{key_prefix}test:phase:{i}") for i in range(4)]
                calls_left = await redis.hgetall(keys.route_calls(GROUP))
                stacks = [await redis.get(f"{key_prefix}test:stacks:{i}") for i in range(4)]
                for p in procs:
                    p.kill()
                raise AssertionError(([p.exitcode for p in procs], phases, calls_left, stacks))
        if watcher.done():
            break
        results.append(out.get_nowait())
    finished.set()
    await watcher  # re-raises a failed invariant
    assert len(samples) > 50 and max(samples) > 5  # it watched a busy centre
    for p in procs:
        p.join(timeout=10)
        assert p.exitcode == 0
    elapsed = time.monotonic() - started
    connects = [json.loads(x) for x in await redis.lrange(key_prefix + "test:connects", 0, -1)]
    per_call = Counter(c[0] for c in connects)
    assert max(per_call.values()) == 1, "a call was paired twice"
    assert len({c[2] for c in connects}) == len(connects)  # reservation ids unique
    # every call accounted for: ended as completed or abandoned, nothing left behind
    assert await redis.hlen(keys.route_calls(GROUP)) == 0
    done = {k: json.loads(v) for k, v in (await redis.hgetall(keys.route_done(GROUP))).items()}
    expected = {f"P{i}-{n:04d}" for i in range(PROCESSES) for n in range(CALLS // PROCESSES)}
    assert set(done) == expected
    outcomes = Counter(d["st"] for d in done.values())
    assert set(outcomes) <= {"completed", "abandoned"}
    assert outcomes["completed"] == len([c for c in per_call if done[c]["st"] == "completed"])
    # no agent held two calls: each agent's reservations never overlap in Redis time
    by_agent: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for sid, d in done.items():
        if d.get("a") is not None and d.get("rat") is not None:
            by_agent[d["a"]].append((int(d["rat"]), int(d["ended"]), sid))
    for agent, spans in by_agent.items():
        spans.sort()
        for (_, end, sid), (start, _, nxt) in zip(spans, spans[1:], strict=False):
            assert end <= start, f"{agent} held {sid} and {nxt} at once"
    # and the statistics agree with the records
    stats: Counter[str] = Counter()
    for queue in ("general", "cards", "vip"):
        async for key in redis.scan_iter(match=f"{keys.route_tag(GROUP)}:stats:{queue}:*"):
            for field, value in (await redis.hgetall(key)).items():
                stats[field] += int(value)
    assert stats["offered"] == CALLS
    assert stats["answered"] == outcomes["completed"] == stats["handled"]
    assert stats["abandoned"] == outcomes["abandoned"]
    print(
        f"\n{CALLS} calls, {PROCESSES} processes, {AGENTS} agents in {elapsed:.1f} s: "
        f"{dict(outcomes)}; refused agent actions {[r[1] for r in results]}"
    )


# --- a process killed in the middle of a pairing ---------------------------------------


async def _doomed(url: str, prefix: str) -> None:
    redis = await open_client(url)
    store = QueueStore(redis, Keys(prefix=prefix), big_config(lease_s=0.3), group=GROUP)
    await store.sync_clock()

    class Hang:
        async def connect(self, pairing: Pairing) -> None:
            await redis.rpush(prefix + "test:reserved", pairing.call_sid)
            await asyncio.Event().wait()  # the redirect never goes out: killed here

    router = Router(store, Hang())
    for n in range(5):
        await router.join(f"K{n}", "general")
    await router.login("a01", ready=True)
    await router.login("a02", ready=True)
    await asyncio.Event().wait()


def doomed_main(url: str, prefix: str) -> None:
    asyncio.run(_doomed(url, prefix))


async def test_process_killed_mid_pairing_loses_no_call(
    redis: aioredis.Redis, redis_url: str, key_prefix: str
) -> None:
    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=doomed_main, args=(redis_url, key_prefix))
    proc.start()
    try:
        for _ in range(200):
            if await redis.llen(key_prefix + "test:reserved") >= 2:
                break
            await asyncio.sleep(0.05)
        proc.kill()  # SIGKILL: no cleanup, no finally
        proc.join(timeout=10)
    finally:
        if proc.is_alive():
            proc.kill()
    assert proc.exitcode == -9
    reserved = await redis.lrange(key_prefix + "test:reserved", 0, -1)
    assert sorted(reserved) == ["K0", "K1"]
    store = QueueStore(redis, Keys(prefix=key_prefix), big_config(lease_s=0.3), group=GROUP)
    await store.sync_clock()
    assert (await store.call_status("K0")).state == "reserved"  # type: ignore[union-attr]
    await asyncio.sleep(0.35)

    class Quick:
        def __init__(self) -> None:
            self.seen: list[str] = []

        async def connect(self, pairing: Pairing) -> None:
            self.seen.append(pairing.call_sid)

    quick = Quick()
    router = Router(store, quick)
    swept = await router.run_once()
    assert sorted(swept.expired) == ["K0", "K1"]
    for n in range(5):
        status = await store.call_status(f"K{n}")
        assert status is not None and status.state == "waiting" and status.position == n + 1
    for agent in ("a01", "a02"):
        status_a = await store.agent(agent)
        assert status_a.state is AgentState.NOT_READY and status_a.reason == "lease_expired"
    await router.ready("a01")
    await router.drain()
    assert quick.seen == ["K0"]  # the oldest call, back at the head, goes first
