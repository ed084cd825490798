"""Statistics: counters per 15-minute interval, abandonment, service level, snapshot."""

from __future__ import annotations

import asyncio
import json
import math

import pytest
import redis.asyncio as aioredis

from config.keys import Keys
from queueing.stats import QueueStats, summarize_counters
from queueing.store import CENTRE, INTERVAL_S, STATS_TTL_S, QueueStore
from tests.queueing.test_store_support import make_store


@pytest.fixture
async def store(redis: aioredis.Redis, keys: Keys) -> QueueStore:
    s = make_store(redis, keys)
    await s.sync_clock()
    return s


async def current_interval(redis: aioredis.Redis) -> int:
    sec, _ = await redis.time()
    return int(sec) // INTERVAL_S


async def counters(store: QueueStore, queue: str) -> dict[str, int]:
    iv = await current_interval(store.redis)
    rows = await store.interval_stats([queue], [iv])
    return rows[(queue, iv)]


async def test_abandons_short_and_after_target(store: QueueStore) -> None:
    # complaints: target 1 s, short abandon 0.2 s
    await store.join("short", "complaints")
    await store.join("mid", "complaints")
    await store.join("late", "complaints")
    await store.leave("short")
    await asyncio.sleep(0.3)
    await store.leave("mid")
    await asyncio.sleep(0.8)
    await store.leave("late")
    c = await counters(store, "complaints")
    assert c["offered"] == 3
    assert c["abandoned"] == 3
    assert c["abandoned_short"] == 1
    assert c["abandoned_after_target"] == 1
    waits = [e["waited_ms"] for e in await store.abandoned()]
    assert waits[0] >= 1000 and waits[-1] < 200


async def test_answered_within_target_and_service_level(store: QueueStore) -> None:
    await store.login("m1", ready=True)
    (p,) = (await store.join("fast", "complaints")).pairings
    await store.answer("fast", p.reservation)
    await store.join("slow", "complaints")
    await asyncio.sleep(1.05)
    await store.complete("fast")  # m1 ready again: takes "slow" after > 1 s
    status = await store.agent("m1")
    assert status.call_sid == "slow"
    await store.answer("slow", await _reservation(store, "slow"))
    c = await counters(store, "complaints")
    assert c["answered"] == 2 and c["answered_in_target"] == 1
    figures = summarize_counters(c, target_s=1)
    assert figures["service_level"] == pytest.approx(0.5)
    assert figures["asa_s"] is not None and figures["asa_s"] > 0.5
    assert c["handled"] == 1


async def _reservation(store: QueueStore, sid: str) -> int:
    raw = await store.redis.hget(store.keys.route_calls("t"), sid)
    return int(json.loads(raw)["res"])


async def test_interval_hash_has_a_ttl(store: QueueStore, redis: aioredis.Redis) -> None:
    await store.join("CA1", "general")
    iv = await current_interval(redis)
    ttl = await redis.ttl(store.keys.route_stats("t", "general", iv))
    assert STATS_TTL_S - 10 < ttl <= STATS_TTL_S


@pytest.mark.parametrize("skew_s", [-INTERVAL_S, -1, 0, 1, INTERVAL_S])
async def test_events_land_in_redis_clock_interval_despite_skew(
    store: QueueStore, redis: aioredis.Redis, skew_s: int
) -> None:
    store._offset_ms += skew_s * 1000  # this process's clock is off by skew_s
    await store.join("CA1", "general")
    iv = await current_interval(redis)
    assert await redis.hget(store.keys.route_stats("t", "general", iv), "offered") == "1"


async def test_agent_time_in_state_and_occupancy(store: QueueStore) -> None:
    await store.login("g1", ready=True)
    await asyncio.sleep(0.1)
    (p,) = (await store.join("CA1", "general")).pairings
    await store.answer("CA1", p.reservation)
    await asyncio.sleep(0.1)
    await store.complete("CA1")
    await store.logout("g1")
    c = await counters(store, CENTRE)
    assert c["ms_ready"] >= 90 and c["ms_on_call"] >= 90
    snap = await QueueStats(store).snapshot()
    occ = snap["centre"]["occupancy"]["interval"]
    assert occ is not None and 0.3 < occ < 0.7


async def test_handle_time_samples_include_wrap_up(store: QueueStore) -> None:
    await store.login("k1", ready=True)
    (p,) = (await store.join("CA1", "cards")).pairings
    await store.answer("CA1", p.reservation)
    await asyncio.sleep(0.05)
    await store.complete("CA1")
    await asyncio.sleep(0.1)
    await store.end_wrap_up("k1")
    samples = (await store.recent_handle_times())["cards"]
    assert len(samples) == 1 and 0.14 < samples[0] < 1.0
    c = await counters(store, "cards")
    assert c["talk_ms"] >= 40 and c["wrap_ms"] >= 90


async def test_snapshot_is_json_ready_with_live_and_interval_figures(store: QueueStore) -> None:
    await store.login("g1", ready=True)
    await store.login("g2")
    await store.join("CA0", "general")  # goes to g1
    await store.join("CA1", "general", attributes={"segment": "high_value"})
    await store.join("CA2", "general")
    await store.join("CA3", "general")
    await store.leave("CA3")
    await asyncio.sleep(0.02)
    snap = await QueueStats(store).snapshot()
    json.dumps(snap, allow_nan=False)
    g = snap["queues"]["general"]
    assert g["live"]["waiting"] == 2
    assert g["live"]["waiting_by_priority"] == {"6": 1, "2": 1}
    assert g["live"]["longest_wait_s"] >= 0.02
    assert g["live"]["agents_by_state"]["reserved"] == 1
    assert g["live"]["agents_by_state"]["not_ready"] == 1
    assert g["interval"]["offered"] == 4 and g["interval"]["abandoned"] == 1
    assert g["last_hour"]["offered"] == 4 and g["today"]["offered"] == 4
    assert snap["centre"]["waiting"] == 2
    assert snap["centre"]["agents_by_state"]["offline"] == 6
    assert {a["id"] for a in snap["agents"]} >= {"g1", "g2", "c1"}


async def test_staffing_advice_uses_erlang_c(store: QueueStore, redis: aioredis.Redis) -> None:
    iv = await current_interval(redis)
    key = store.keys.route_stats("t", "general", iv)
    # 100 calls in the last hour, AHT 180 s
    await redis.hset(key, mapping={"offered": 100, "handled": 100, "talk_ms": 18_000_000})
    snap = await QueueStats(store).snapshot()
    staffing = snap["queues"]["general"]["staffing"]
    assert staffing["calls_per_hour"] == 100 and staffing["aht_s"] == pytest.approx(180)
    assert staffing["agents_needed"] == 8  # 5 erlangs, 80 % in 30 s
    assert staffing["erlang_service_level"] >= 0.8
    assert math.isclose(staffing["traffic_erlangs"], 5.0)
