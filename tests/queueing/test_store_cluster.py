"""The routing scripts on a real 3-master Redis Cluster (Debian's redis-server, the
session's local cluster): every key of a script shares one hash slot, so Cluster accepts
them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio.cluster import RedisCluster

from config.keys import Keys
from queueing.agents import AgentState
from queueing.router import Router
from queueing.stats import QueueStats
from queueing.store import Pairing, QueueStore
from tests.cluster.starter import LocalCluster
from tests.queueing.test_store_support import test_config

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster_url(local_cluster: LocalCluster) -> str:
    """The session's local cluster (tests/conftest.py), reached through its first node."""
    return f"redis://127.0.0.1:{local_cluster.ports[0]}/0"


@pytest.fixture
async def cluster(cluster_url: str) -> AsyncIterator[RedisCluster]:
    client = RedisCluster.from_url(cluster_url, decode_responses=True)
    await client.initialize()
    try:
        yield client
    finally:
        await client.aclose()


class Recording:
    def __init__(self) -> None:
        self.seen: list[Pairing] = []

    async def connect(self, pairing: Pairing) -> None:
        self.seen.append(pairing)


async def test_full_call_life_on_cluster(cluster: RedisCluster) -> None:
    store = QueueStore(
        cluster, Keys(prefix=f"cl:{uuid.uuid4().hex[:8]}:"), test_config(), group="t"
    )
    await store.sync_clock()
    dispatcher = Recording()
    router = Router(store, dispatcher)
    await router.login("g1", ready=True)
    await router.join("CA1", "general")
    await router.drain()
    (p,) = dispatcher.seen
    await router.answer("CA1", p.reservation)
    await router.complete("CA1")
    await router.logout("g1")
    await router.join("CA2", "general", attributes={"segment": "high_value"})
    assert await router.take_callback("CA2", "+15550001111") == 1
    await router.join("CA3", "vip")
    await router.leave("CA3")
    snap = await QueueStats(store).snapshot()
    assert snap["queues"]["general"]["interval"]["answered"] == 1
    assert snap["queues"]["vip"]["interval"]["abandoned"] == 1
    assert snap["queues"]["general"]["live"]["waiting"] == 1


async def test_lease_expiry_on_cluster(cluster: RedisCluster) -> None:
    store = QueueStore(
        cluster, Keys(prefix=f"cl:{uuid.uuid4().hex[:8]}:"), test_config(), group="t"
    )
    await store.sync_clock()
    await store.join("CA1", "general")
    (p,) = (await store.login("g2", ready=True)).pairings
    await asyncio.sleep(0.35)
    swept = await store.sweep()
    assert swept.expired == (p.call_sid,)
    assert (await store.agent("g2")).state is AgentState.NOT_READY
    status = await store.call_status("CA1")
    assert status is not None and status.state == "waiting" and status.position == 1
