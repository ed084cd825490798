"""The routing scripts on a real 3-master Redis Cluster (Debian's redis-server), started
here on free ports: every key of a script shares one hash slot, so Cluster accepts them."""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster

from config.keys import Keys
from queueing.agents import AgentState
from queueing.router import Router
from queueing.stats import QueueStats
from queueing.store import Pairing, QueueStore
from tests.queueing.test_store_support import test_config

SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
CLI = shutil.which("redis-cli")

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        not Path(SERVER).exists() or CLI is None, reason="redis-server / redis-cli not installed"
    ),
]


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port(taken: set[int]) -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    rng = random.Random()
    while True:
        port = rng.randrange(20000, 30000)
        if port not in taken and _bindable(port) and _bindable(port + 10000):
            taken.add(port)
            return port


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("cluster")
    taken: set[int] = set()
    ports = [_free_port(taken) for _ in range(3)]
    procs = []
    try:
        for port in ports:
            d = base / str(port)
            d.mkdir()
            procs.append(
                subprocess.Popen(
                    [
                        SERVER,
                        "--port",
                        str(port),
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--bind",
                        "127.0.0.1",
                        "--dir",
                        str(d),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        deadline = time.monotonic() + 10
        for port in ports:
            while (
                subprocess.run(
                    [str(CLI), "-p", str(port), "ping"], capture_output=True, text=True
                ).stdout.strip()
                != "PONG"
            ):
                assert time.monotonic() < deadline, "cluster node did not start"
                time.sleep(0.05)
        subprocess.run(
            [
                str(CLI),
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
        )
        while (
            "cluster_state:ok"
            not in subprocess.run(
                [str(CLI), "-p", str(ports[0]), "cluster", "info"], capture_output=True, text=True
            ).stdout
        ):
            assert time.monotonic() < deadline + 10, "cluster did not become ready"
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


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
