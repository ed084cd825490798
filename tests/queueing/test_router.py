"""Routing policy and the router: priorities, strategies, VIP overflow, leases, dispatch."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from config.keys import Keys
from queueing.agents import AgentState
from queueing.router import Router
from queueing.stats import QueueStats
from queueing.store import Pairing, QueueStore
from tests.queueing.test_store_support import make_store


class RecordingDispatcher:
    def __init__(self, *, fail: bool = False) -> None:
        self.connected: list[Pairing] = []
        self.fail = fail

    async def connect(self, pairing: Pairing) -> None:
        if self.fail:
            raise RuntimeError("carrier refused the redirect")
        self.connected.append(pairing)


class SilentDispatcher:
    """A process that dies after reserving: connect never returns."""

    async def connect(self, pairing: Pairing) -> None:
        await asyncio.Event().wait()


@pytest.fixture
async def store(redis: aioredis.Redis, keys: Keys) -> QueueStore:
    s = make_store(redis, keys)
    await s.sync_clock()
    return s


async def pause() -> None:
    await asyncio.sleep(0.005)  # distinct join / idle times at ms resolution


async def test_highest_priority_first_then_longest_waiting(store: QueueStore) -> None:
    await store.join("low-old", "general")
    await pause()
    await store.join("high-new", "general", attributes={"segment": "high_value"})
    await pause()
    await store.join("low-new", "general")
    await store.login("g3", ready=True)  # general + complaints
    await store.join("complaint", "complaints")  # priority 4 beats general's 2, not 6
    order = []
    for _ in range(4):
        status = await store.agent("g3")
        if status.call_sid is None:
            break
        order.append(status.call_sid)
        call = await store.call_status(status.call_sid)
        assert call is not None
        await store.leave(status.call_sid)  # frees the agent, which pairs again
    assert order == ["high-new", "complaint", "low-old", "low-new"]


async def test_higher_priority_queue_wins_across_queues(store: QueueStore) -> None:
    await store.join("g-call", "general")
    await pause()
    await store.join("vip-call", "vip")
    (p,) = (await store.login("c1", ready=True)).pairings  # care: general + vip
    assert p.call_sid == "vip-call" and p.priority == 9


async def test_longest_idle_agent_first(store: QueueStore) -> None:
    await store.login("g2", ready=True)
    await pause()
    await store.login("g1", ready=True)
    (p,) = (await store.join("CA1", "general")).pairings
    assert p.agent_id == "g2"  # ready longer, despite g1 being listed first


async def test_skill_level_strategy(store: QueueStore) -> None:
    await store.login("k2", ready=True)  # cards level 5, ready later
    await pause()
    await store.login("k1", ready=True)  # cards level 2
    await store.logout("k2")
    await store.login("k2", ready=True)
    (p,) = (await store.join("CA1", "cards")).pairings
    assert p.agent_id == "k2"


async def test_fewest_calls_strategy(store: QueueStore) -> None:
    await store.login("m1", ready=True)
    await store.login("m2", ready=True)
    # m1 is idle longest; give it a call so it has handled more than m2
    (p,) = (await store.join("c1", "complaints")).pairings
    assert p.agent_id == "m1"
    await store.answer("c1", p.reservation)
    await store.complete("c1")  # m1 back to ready, idle since now, 1 call
    await store.not_ready("m2", "break")
    await store.ready("m2")  # m2 now idle for less time than m1 ... but 0 calls
    (q,) = (await store.join("c2", "complaints")).pairings
    assert q.agent_id == "m2"


async def test_vip_served_by_care_team_first_then_overflow(store: QueueStore) -> None:
    await store.login("g1", ready=True)  # general pool only
    first = await store.join("vip1", "vip")
    assert first.pairings == ()  # a general agent is ready but the care team goes first
    await store.login("c1", ready=True)
    # c1 is the care team: it takes vip1 at once
    assert (await store.agent("c1")).call_sid == "vip1"
    second = await store.join("vip2", "vip")
    assert second.pairings == ()
    await asyncio.sleep(0.45)  # overflow_after_s: 0.4
    (p,) = await store.pair()
    assert (p.call_sid, p.agent_id, p.via_queue, p.queue) == ("vip2", "g1", "general", "vip")
    assert p.overflow


async def test_vip_beats_general_for_the_overflow_pool(store: QueueStore) -> None:
    await store.join("gen", "general")
    await store.join("vip", "vip")
    await asyncio.sleep(0.45)
    (p,) = (await store.login("g1", ready=True)).pairings
    assert p.call_sid == "vip"


async def test_router_dispatches_and_extends_the_lease(store: QueueStore) -> None:
    dispatcher = RecordingDispatcher()
    router = Router(store, dispatcher)
    await router.login("g1", ready=True)
    await router.join("CA1", "general")
    await router.drain()
    (p,) = dispatcher.connected
    assert p.call_sid == "CA1"
    status = await store.call_status("CA1")
    assert status is not None and status.state == "ringing"
    await router.answer("CA1", p.reservation)
    await router.complete("CA1")
    assert router.dispatched_count == 1


async def test_failed_dispatch_releases_the_reservation(store: QueueStore) -> None:
    router = Router(store, RecordingDispatcher(fail=True))
    await router.login("g1", ready=True)
    await router.join("CA1", "general")
    await router.drain()
    assert router.failed_count == 1
    assert (await store.agent("g1")).state is AgentState.READY
    status = await store.call_status("CA1")
    assert status is not None and status.state == "waiting"


async def test_dead_dispatch_lease_expiry_returns_call_to_its_place(store: QueueStore) -> None:
    dead = Router(store, SilentDispatcher())
    await store.join("CA0", "general")
    await pause()
    await store.join("CA1", "general")
    await dead.login("g1", ready=True)  # reserves CA0; the dispatcher never returns
    await asyncio.sleep(0.05)
    await store.join("CA2", "general")
    for task in list(dead._tasks):
        task.cancel()
    await dead.drain()
    assert (await store.call_status("CA0")).state == "reserved"  # type: ignore[union-attr]
    await asyncio.sleep(0.35)  # reserve_lease_s: 0.3
    live = Router(store, RecordingDispatcher())
    swept = await live.run_once()
    assert swept.expired == ("CA0",)
    status = await store.call_status("CA0")
    assert status is not None and status.state == "waiting" and status.position == 1
    agent = await store.agent("g1")
    assert agent.state is AgentState.NOT_READY and agent.reason == "lease_expired"
    await live.login("g2", ready=True)
    await live.drain()
    dispatcher = live.dispatcher
    assert isinstance(dispatcher, RecordingDispatcher)
    assert [p.call_sid for p in dispatcher.connected] == ["CA0"]


async def test_ring_lease_expiry_after_dispatch(store: QueueStore) -> None:
    router = Router(store, RecordingDispatcher())
    await router.login("g1", ready=True)
    await router.join("CA1", "general")
    await router.drain()
    await asyncio.sleep(0.35)
    assert (await router.run_once()).expired == ()  # ring lease: 0.3 + 0.3 s
    await asyncio.sleep(0.3)
    assert (await router.run_once()).expired == ("CA1",)


async def test_router_loop_pairs_overflow_and_ends_wrap_up(store: QueueStore) -> None:
    dispatcher = RecordingDispatcher()
    router = Router(store, dispatcher, sweep_every_s=0.05)
    await router.start()
    try:
        await router.login("g1", ready=True)
        await router.join("vip1", "vip")
        for _ in range(40):
            await asyncio.sleep(0.05)
            if dispatcher.connected:
                break
        (p,) = dispatcher.connected
        assert p.call_sid == "vip1" and p.overflow
    finally:
        await router.stop()


async def test_wait_info_for_the_hold_loop(store: QueueStore) -> None:
    router = Router(store, RecordingDispatcher(), stats=QueueStats(store, cache_s=0))
    await router.join("CA1", "general")
    info = await router.wait_info("CA1")
    assert info is not None and info.position == 1 and info.ewt_s == float("inf")
    assert info.offer_callback  # nobody staffed
    await router.login("g1")  # not ready: still nobody serving
    await router.login("g2", ready=True)
    await router.drain()
    await router.join("CA2", "general")
    store_stats = router.stats
    info2 = await store_stats.wait_info("CA2")
    assert info2 is not None and info2.position == 1
    assert info2.ewt_s is not None and 0 < info2.ewt_s < 1000
    assert await router.wait_info("nope") is None
