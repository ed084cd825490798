"""The hold loop's per-queue estimate and the statistics reads: the same figures as the
all-queues computation, read with fewer round trips, cached within their stated age."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis

from config.keys import Keys
from queueing import live_queues
from queueing import stats as stats_module
from queueing.live_queues import read_waiting
from queueing.recent import Recent
from queueing.stats import QueueStats
from queueing.store import CENTRE, QueueStore
from tests.queueing.test_store_support import make_store


@pytest.fixture
async def store(redis: aioredis.Redis, keys: Keys) -> QueueStore:
    s = make_store(redis, keys)
    await s.sync_clock()
    return s


async def _reservation(store: QueueStore, sid: str) -> int:
    raw = await store.redis.hget(store.keys.route_calls(store.group), sid)
    return int(json.loads(raw)["res"])


async def busy_centre(store: QueueStore) -> list[str]:
    """Agents in every state, handle samples in some queues, callers waiting in several
    queues at several priorities. Returns the waiting CallSids."""
    await store.login("k1", ready=True)
    (p,) = (await store.join("CAk1", "cards")).pairings
    await store.answer("CAk1", p.reservation)
    await asyncio.sleep(0.05)
    await store.complete("CAk1")  # k1 wraps up (0.2 s): a cards handle sample follows
    await store.login("g1", ready=True)
    (p,) = (await store.join("CAg1", "general")).pairings
    await store.answer("CAg1", p.reservation)  # g1 on a call
    await store.login("g3", ready=True)
    await store.join("CAg3", "general")  # g3 reserved (ringing)
    await store.login("m1", ready=True)  # ready, serves complaints
    await store.login("g2")  # not ready
    await asyncio.sleep(0.25)
    await store.sweep()  # k1's wrap-up ends: a cards sample of ~0.25 s
    waiting = []
    for i, (queue, prio) in enumerate(
        [("general", 2), ("general", 6), ("cards", 7), ("cards", 7), ("vip", 9), ("general", 2)]
    ):
        sid = f"CAw{i}"
        await store.join(sid, queue, priority=prio, pair=False)
        waiting.append(sid)
    return waiting


async def test_one_queue_model_equals_the_all_queues_one(store: QueueStore) -> None:
    await busy_centre(store)
    now = store.now_ms()
    store.now_ms = lambda: now  # type: ignore[method-assign]  # both reads at one instant
    everything = await QueueStats(store).queue_models(fresh=True)
    for name in store.queue_names:
        assert await QueueStats(store).queue_model(name) == everything[name], name
    assert everything["general"].busy_elapsed_s  # g1 talking (and g3 ringing, or not)
    assert everything["complaints"].ready == 1  # m1
    assert everything["cards"].recent_handle_s != ()  # its own sample
    assert everything["general"].recent_handle_s == everything["cards"].recent_handle_s


async def test_per_queue_wait_info_equals_the_all_queues_one(store: QueueStore) -> None:
    waiting = await busy_centre(store)
    now = store.now_ms()
    store.now_ms = lambda: now  # type: ignore[method-assign]
    reference = QueueStats(store)
    models = await reference.queue_models(fresh=True)
    checked = 0
    for sid in waiting:
        status = await store.call_status(sid)
        assert status is not None and status.position is not None
        for hint in (status.queue, None, "complaints"):  # right, none, wrong
            info = await QueueStats(store).wait_info(sid, hint)
            assert info is not None
            model = models[status.queue]
            assert info.position == status.position
            assert info.ewt_s == model.estimate(status.position)
            assert info.agents_staffed == model.staffed
            threshold = store.config.queues[status.queue].callback_threshold_s
            assert info.offer_callback == (info.ewt_s > threshold)
            checked += 1
    assert checked == 18
    assert await QueueStats(store).wait_info("CAnobody", "general") is None


async def test_wait_info_of_a_call_no_longer_waiting(store: QueueStore) -> None:
    await store.join("CAgone", "general")
    await store.leave("CAgone")
    info = await QueueStats(store).wait_info("CAgone", "general")
    assert info is not None and info.state == "abandoned" and info.ewt_s is None


async def test_a_model_is_reused_within_its_age_and_read_again_after(
    store: QueueStore,
) -> None:
    stats = QueueStats(store, cache_s=0.3)
    assert (await stats.queue_model("general")).staffed == 0
    await store.login("g1", ready=True)
    assert (await stats.queue_model("general")).staffed == 0  # up to 0.3 s old
    await asyncio.sleep(0.3)
    # past its age: the held model is served while one refresh runs in the background
    assert (await stats.queue_model("general")).staffed == 0
    for _ in range(100):
        await asyncio.sleep(0.01)
        model = await stats.queue_model("general")
        if model.staffed:
            break
    assert (model.staffed, model.ready) == (1, 1)
    # past the bound (3 x 0.3 s) nobody is served the held model: they wait for a read
    await store.logout("g1")
    await asyncio.sleep(0.95)
    assert (await stats.queue_model("general")).staffed == 0


async def test_read_waiting_equals_waiting_now(
    store: QueueStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await busy_centre(store)
    for head_max in (100, 2):  # 2: the long-queue path (counts per priority band)
        monkeypatch.setattr(live_queues, "HEAD_MAX", head_max)
        waiting, heads = await read_waiting(store)
        expected = await store.waiting_now()
        for name in store.queue_names:
            want = {k: v for k, v in expected[name].items() if k != "ready_agents"}
            assert waiting[name] == want, (head_max, name)
            order = await store.redis.zrange(store.keys.route_waiting(store.group, name), 0, -1)
            assert heads[name] == order[:head_max]
    assert waiting["general"]["by_priority"] == {"6": 1, "2": 2}


async def test_ended_intervals_are_read_once(store: QueueStore, redis: aioredis.Redis) -> None:
    stats = QueueStats(store)
    iv = store.interval_now()
    names = ["general", CENTRE]
    key_old = store.keys.route_stats(store.group, "general", iv - 5)
    key_now = store.keys.route_stats(store.group, "general", iv)
    await redis.hset(key_old, "offered", 3)
    rows = await stats.today_rows(names, range(iv - 5, iv + 1), iv)
    assert rows[("general", iv - 5)] == {"offered": 3}
    await redis.hset(key_old, "offered", 4)  # cannot happen: the scripts write to `now`
    await redis.hset(key_now, "offered", 1)
    rows = await stats.today_rows(names, range(iv - 5, iv + 1), iv)
    assert rows[("general", iv - 5)] == {"offered": 3}  # kept from the first read
    assert rows[("general", iv)] == {"offered": 1}  # the current interval is read again
    assert rows[(CENTRE, iv - 1)] == {}
    rows = await stats.today_rows(names, range(iv - 1, iv + 1), iv)  # a new day
    assert all(key[1] >= iv - 1 for key in stats._rows)


async def test_recent_computes_once_for_concurrent_readers_and_again_after_its_age() -> None:
    calls = 0

    async def compute() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return calls

    recent: Recent[int] = Recent(0.3)
    results = await asyncio.gather(*(recent.get(compute) for _ in range(20)))
    assert calls == 1 and {value for value, _ in results} == {1}
    value, age = await recent.get(compute)
    assert value == 1 and 0.0 < age < 0.3
    await asyncio.sleep(0.3)
    value, age = await recent.get(compute)
    assert value == 2 and calls == 2 and age >= 0.05  # the age counts from before the read


async def test_recent_recomputes_after_a_failure() -> None:
    async def broken() -> int:
        raise RuntimeError("redis away")

    async def works() -> int:
        return 7

    recent: Recent[int] = Recent(10.0)
    with pytest.raises(RuntimeError):
        await recent.get(broken)
    assert recent.peek() is None
    assert (await recent.get(works))[0] == 7


async def test_agents_read_in_slices_equal_the_stores_read(
    store: QueueStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await busy_centre(store)
    await store.redis.hset(
        store.keys.route_agents(store.group), "ghost", json.dumps({"s": "ready", "since": 1})
    )  # an agent in Redis that the configuration no longer has
    monkeypatch.setattr(stats_module, "CHUNK_AGENTS", 2)
    now = store.now_ms()
    monkeypatch.setattr(store, "now_ms", lambda: now)  # the same time in state both ways
    assert await QueueStats(store).agents() == await store.agents()
