"""Fixtures for the cluster tests: the session's local 3-master Redis Cluster (the root
conftest's `local_cluster`, started from Debian's redis-server by tests/cluster/starter.py;
skipped when redis-server or redis-cli is missing), its URL, and a client per test whose
keys are removed afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio.cluster import RedisCluster

from config.redis_conn import cluster_client
from tests.cluster.starter import LocalCluster


@pytest.fixture(scope="session")
def cluster_ports(local_cluster: LocalCluster) -> list[int]:
    return local_cluster.ports


@pytest.fixture(scope="session")
def cluster_url(cluster_ports: list[int]) -> str:
    """The service's cluster URL form: every master as a startup node."""
    return LocalCluster(cluster_ports).url


@pytest.fixture
def cluster_prefix() -> str:
    return f"hlcl:{uuid.uuid4().hex[:10]}:"


@pytest.fixture
async def cluster(cluster_url: str, cluster_prefix: str) -> AsyncIterator[RedisCluster]:
    """A cluster client (decode_responses) for one test; its prefix is removed afterwards."""
    client = cluster_client(cluster_url)
    try:
        yield client
    finally:
        async for key in client.scan_iter(match=f"{cluster_prefix}*", count=500):
            await client.unlink(key)
        await client.aclose()
