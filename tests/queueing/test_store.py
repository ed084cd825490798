"""Each routing script against the real Redis."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis

from config.keys import Keys
from queueing.agents import AgentState
from queueing.store import (
    INTERVAL_S,
    STATS_TTL_S,
    CallNotWaiting,
    InvalidTransition,
    QueueStore,
    StaleReservation,
    UnknownCall,
    UnknownQueue,
)
from tests.queueing.test_store_support import make_store


@pytest.fixture
async def store(redis: aioredis.Redis, keys: Keys) -> QueueStore:
    s = make_store(redis, keys)
    await s.sync_clock()
    return s


async def test_keys_share_one_hash_slot(store: QueueStore) -> None:
    layout = store._key_layout(store.interval_now())
    tags = {k[k.index("{") : k.index("}") + 1] for k in layout}
    assert len(tags) == 1
    assert all(k.startswith(store.keys.prefix) for k in layout)  # cleaned by prefix
    assert len(layout) == 9 + 4 * len(store.queue_names)


async def test_join_is_idempotent_and_orders_by_priority(store: QueueStore) -> None:
    first = await store.join("CA1", "general")
    assert (first.state, first.position, first.duplicate) == ("waiting", 1, False)
    again = await store.join("CA1", "general")
    assert again.duplicate and again.position == 1 and again.joined_ms == first.joined_ms
    high = await store.join("CA2", "general", attributes={"segment": "high_value"})
    assert high.position == 1  # priority 6 beats 2
    assert (await store.call_status("CA1")).position == 2  # type: ignore[union-attr]
    explicit = await store.join("CA3", "general", priority=9, info={"from": "+15551234567"})
    assert explicit.position == 1
    status = await store.call_status("CA3")
    assert status is not None and status.priority == 9 and status.info["from"] == "+15551234567"
    with pytest.raises(UnknownQueue):
        await store.join("CA4", "nope")


async def test_join_pairs_at_once_with_a_ready_agent(store: QueueStore) -> None:
    await store.login("g1", ready=True)
    result = await store.join("CA1", "general", info={"reason": "balance"})
    assert result.state == "reserved" and result.position is None
    (p,) = result.pairings
    assert (p.call_sid, p.agent_id, p.agent_address, p.kind) == (
        "CA1",
        "g1",
        "+15550000001",
        "call",
    )
    assert p.info["reason"] == "balance" and not p.overflow
    assert (await store.agent("g1")).state is AgentState.RESERVED


async def test_leave_counts_abandon_and_lists_it(store: QueueStore, redis: aioredis.Redis) -> None:
    await store.join("CA1", "general", info={"from": "+15550001111"})
    out = await store.leave("CA1")
    assert out.state == "abandoned"
    again = await store.leave("CA1")
    assert again.data["already"] is True
    listed = await store.abandoned()
    assert listed[0]["call_sid"] == "CA1" and listed[0]["info"]["from"] == "+15550001111"
    with pytest.raises(UnknownCall):
        await store.leave("CA-unknown")
    # the list is bounded (abandoned_list_max: 5 in the test config)
    for i in range(8):
        await store.join(f"CB{i}", "general")
        await store.leave(f"CB{i}")
    assert len(await store.abandoned(100)) == 5


async def test_leave_while_ringing_frees_the_agent(store: QueueStore) -> None:
    await store.login("g1", ready=True)
    (p,) = (await store.join("CA1", "general")).pairings
    await store.leave("CA1")
    assert (await store.agent("g1")).state is AgentState.READY
    with pytest.raises(StaleReservation):
        await store.answer("CA1", p.reservation)


async def test_answer_then_complete_with_wrap_up(store: QueueStore) -> None:
    await store.login("k1", ready=True)
    (p,) = (await store.join("CA1", "cards")).pairings
    await store.dispatched(p)
    with pytest.raises(StaleReservation):
        await store.answer("CA1", p.reservation + 1000)
    answered = await store.answer("CA1", p.reservation)
    assert answered.data["agent"] == "k1"
    assert (await store.agent("k1")).state is AgentState.ON_CALL
    with pytest.raises(StaleReservation):  # a second answer is refused
        await store.answer("CA1", p.reservation)
    done = await store.complete("CA1")
    assert done.data["agent_state"] == "wrap_up"
    assert (await store.complete("CA1")).data["already"] is True
    assert (await store.agent("k1")).state is AgentState.WRAP_UP  # cards: 0.2 s wrap-up
    await asyncio.sleep(0.25)
    swept = await store.sweep()
    assert swept.wrapped == ("k1",)
    agent = await store.agent("k1")
    assert agent.state is AgentState.READY and agent.calls_handled == 1


async def test_complete_requires_a_connected_call(store: QueueStore) -> None:
    await store.join("CA1", "general")
    with pytest.raises(CallNotWaiting):
        await store.complete("CA1")
    with pytest.raises(UnknownCall):
        await store.complete("CA-none")


async def test_no_answer_agent_goes_not_ready_call_back_to_head(store: QueueStore) -> None:
    await store.join("CA1", "general")
    await asyncio.sleep(0.01)
    await store.join("CA2", "general")
    (p,) = (await store.login("g1", ready=True)).pairings  # pairs at once: CA1 is oldest
    assert p.call_sid == "CA1"
    await store.join("CA3", "general")
    result = await store.no_answer("CA1", p.reservation)
    assert result.state == "waiting" and result.pairings == ()
    agent = await store.agent("g1")
    assert agent.state is AgentState.NOT_READY and agent.reason == "no_answer"
    status = await store.call_status("CA1")
    assert status is not None and status.position == 1 and status.joined_ms == p.joined_ms


async def test_no_answer_by_system_releases_agent_without_pairing(store: QueueStore) -> None:
    await store.login("g1", ready=True)
    (p,) = (await store.join("CA1", "general")).pairings
    result = await store.no_answer("CA1", p.reservation, party="system")
    assert result.pairings == ()  # no hot loop: the sweeper pairs again
    assert (await store.agent("g1")).state is AgentState.READY
    swept = await store.sweep()
    assert [x.call_sid for x in swept.pairings] == ["CA1"]
    assert swept.pairings[0].attempts == 1


async def test_callback_keeps_place_and_pairs_as_callback(store: QueueStore) -> None:
    await store.join("CA1", "general")
    await asyncio.sleep(0.01)
    await store.join("CA2", "general")
    assert await store.take_callback("CA1", "+15550009999") == 1
    assert (await store.call_status("CA1")).callback  # type: ignore[union-attr]
    hung_up = await store.leave("CA1")  # the caller hangs up after choosing the callback
    assert hung_up.data["ignored"] is True and hung_up.state == "waiting"
    (p,) = (await store.login("g1", ready=True)).pairings
    assert (p.call_sid, p.kind, p.callback_to) == ("CA1", "callback", "+15550009999")
    with pytest.raises(CallNotWaiting):
        await store.take_callback("CA1", "+15550009999")  # already reserved


async def test_callback_unreached_ends_the_callback(store: QueueStore) -> None:
    await store.join("CA1", "general")
    await store.take_callback("CA1", "+15550009999")
    (p,) = (await store.login("g1", ready=True)).pairings
    out = await store.no_answer("CA1", p.reservation, party="customer")
    assert out.state == "callback_unreached"
    assert (await store.agent("g1")).state is AgentState.READY
    status = await store.call_status("CA1")
    assert status is not None and status.state == "callback_unreached"


async def test_keep_joined_ms_requeues_at_the_old_place(store: QueueStore) -> None:
    first = await store.join("CA1", "general")
    await store.join("CA2", "general")
    await store.leave("CA1", "cancelled")
    again = await store.join("CA1b", "general", keep_joined_ms=first.joined_ms)
    assert again.position == 1


async def test_agent_script_transitions(store: QueueStore, redis: aioredis.Redis) -> None:
    out = await store.login("g1")
    assert out.state == "not_ready" and out.data["reason"] == "login"
    with pytest.raises(InvalidTransition):
        await store.login("g1")
    with pytest.raises(InvalidTransition):
        await store.end_wrap_up("g1")
    assert (await store.ready("g1")).state == "ready"
    with pytest.raises(InvalidTransition):
        await store.ready("g1")
    assert (await store.not_ready("g1", "lunch")).data["reason"] == "lunch"
    assert (await store.not_ready("g1", "training")).data["reason"] == "training"
    assert (await store.logout("g1")).state == "offline"
    with pytest.raises(InvalidTransition):
        await store.logout("g1")
    raw = json.loads(await redis.hget(store.keys.route_agents("t"), "g1"))
    assert raw["s"] == "offline"


async def test_sweep_trims_ended_calls_after_keep_time(
    store: QueueStore, redis: aioredis.Redis
) -> None:
    await store.join("CA1", "general")
    await store.leave("CA1")
    k = store.keys
    await redis.zadd(k.route_done_index("t"), {"CA1": 1})  # pretend it ended long ago
    swept = await store.sweep()
    assert swept.trimmed == 1
    assert await store.call_status("CA1") is None


async def test_cancelled_callback_is_not_an_abandon(store: QueueStore) -> None:
    await store.join("CA1", "general")
    await store.take_callback("CA1", "+15550009999")
    out = await store.leave("CA1", "cancelled")
    assert out.state == "cancelled"
    assert await store.abandoned() == []
    iv = store.interval_now()
    row = (await store.interval_stats(["general"], [iv]))[("general", iv)]
    assert row.get("abandoned", 0) == 0 and row["cancelled"] == 1 and row["callbacks"] == 1


async def _redis_interval(redis: aioredis.Redis) -> int:
    sec, _ = await redis.time()
    return int(sec) // INTERVAL_S


@pytest.mark.parametrize("skew_intervals", [-3, 2])
async def test_far_off_clock_estimate_is_corrected_and_events_land_in_redis_interval(
    store: QueueStore, redis: aioredis.Redis, skew_intervals: int
) -> None:
    store._offset_ms += skew_intervals * INTERVAL_S * 1000
    await store.join("CA1", "general")
    iv = await _redis_interval(redis)
    assert await redis.hget(store.keys.route_stats(store.group, "general", iv), "offered") == "1"
    wrong = store.keys.route_stats(store.group, "general", iv + skew_intervals)
    assert not await redis.exists(wrong)  # the refused first attempt wrote nothing
    assert abs(store.interval_now() - iv) <= 1  # the offset was corrected by the reply
    await store.join("CA2", "general")
    assert await redis.hget(store.keys.route_stats(store.group, "general", iv), "offered") == "2"


async def test_call_paired_at_once_never_enters_the_waiting_set(
    store: QueueStore, redis: aioredis.Redis
) -> None:
    await store.login("g1", ready=True)
    joined = await store.join("CA1", "general")
    assert joined.state == "reserved" and joined.position is None
    assert await redis.zcard(store.keys.route_waiting(store.group, "general")) == 0
    assert (await store.call_status("CA1")).state == "reserved"  # type: ignore[union-attr]


async def test_new_call_that_loses_the_agent_to_a_better_head_waits_at_the_front(
    store: QueueStore,
) -> None:
    await store.join("VIP1", "vip")  # nobody of the care team: waits, overflows after 0.4 s
    await store.login("g1", ready=False)
    await store.ready("g1")  # vip has not waited long enough to overflow: g1 stays ready
    assert (await store.agent("g1")).state == AgentState.READY
    await asyncio.sleep(0.45)
    joined = await store.join("CA1", "general")  # g1 goes to the VIP call (priority 9)
    (p,) = joined.pairings
    assert (p.call_sid, p.agent_id, p.overflow) == ("VIP1", "g1", True)
    assert (joined.state, joined.position) == ("waiting", 1)
    await store.login("g2", ready=True)
    assert (await store.call_status("CA1")).agent_id == "g2"  # type: ignore[union-attr]


async def test_equal_scores_keep_redis_member_order(store: QueueStore) -> None:
    joined_ms = store.now_ms() - 1000
    b = await store.join("CB", "general", keep_joined_ms=joined_ms)
    a = await store.join("CA", "general", keep_joined_ms=joined_ms)  # same score, sorts first
    assert (b.position, a.position) == (1, 1)
    assert (await store.call_status("CB")).position == 2  # type: ignore[union-attr]
    c = await store.join("CC", "general", keep_joined_ms=joined_ms)
    assert c.position == 3
    await store.login("g1", ready=True)
    assert (await store.call_status("CA")).state == "reserved"  # type: ignore[union-attr]
    assert (await store.call_status("CB")).position == 1  # type: ignore[union-attr]


async def test_answer_statistics_sums_maximum_overflow_callback_and_ttl(
    store: QueueStore, redis: aioredis.Redis
) -> None:
    # complaints: target 1 s. A is answered at once; B waits 1.2 s (out of target, the
    # maximum); C, a callback, joins later and is answered within target after B.
    await store.join("A", "complaints")
    await store.join("B", "complaints")
    await store.login("m1", ready=True)
    a = await store.answer("A", await _reservation(redis, store, "A"))
    await asyncio.sleep(1.2)
    await store.complete("A")  # m1 ready again: B is paired
    b = await store.answer("B", await _reservation(redis, store, "B"))
    await store.join("C", "complaints")
    await store.take_callback("C", "+15550001111")
    await store.complete("B")  # C is paired
    c = await store.answer("C", await _reservation(redis, store, "C"))
    waits = [int(r.data["waited_ms"]) for r in (a, b, c)]
    assert waits[1] > 1000 and waits[1] == max(waits)
    iv = await _redis_interval(redis)
    key = store.keys.route_stats(store.group, "complaints", iv)
    stats = {k: int(v) for k, v in (await redis.hgetall(key)).items()}
    assert stats["answered"] == 3
    assert stats["wait_answered_ms"] == sum(waits)
    assert stats["max_wait_answered_ms"] == waits[1]
    assert stats["answered_in_target"] == 2
    assert stats["answered_callback"] == 1
    assert "answered_overflow" not in stats
    assert 0 < await redis.ttl(key) <= STATS_TTL_S


async def test_answer_counts_overflow(store: QueueStore, redis: aioredis.Redis) -> None:
    await store.join("V", "vip")
    await asyncio.sleep(0.45)
    (p,) = (await store.login("g1", ready=True)).pairings
    assert p.overflow
    await store.answer("V", p.reservation)
    iv = await _redis_interval(redis)
    key = store.keys.route_stats(store.group, "vip", iv)
    assert await redis.hget(key, "answered_overflow") == "1"
    assert await redis.hget(key, "overflowed") == "1"


async def _reservation(redis: aioredis.Redis, store: QueueStore, sid: str) -> int:
    raw = await redis.hget(store.keys.route_calls(store.group), sid)
    assert raw is not None
    return int(json.loads(raw)["res"])
