"""The service's Redis client packs commands with hiredis (config/redis_conn.py): the same
bytes as redis-py's own packer, the same errors for what hiredis does not take, and the
routing scripts run through it unchanged."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError

from config.keys import Keys
from config.redis_conn import (
    HiredisPackConnection,
    HiredisPackSSLConnection,
    HiredisPackUnixConnection,
    connect,
    is_cluster_url,
)
from tests.queueing.test_store_support import make_store

ARGS: list[tuple[object, ...]] = [
    ("EVALSHA", "a" * 40, 3, b"k1", "k2", "{tag}:k3", 0, -5, 2**70, 1.5, 0.1, 1e20, -0.0),
    ("SET", "é\u1234\U0001f600", b"\x00\xff\r\n", ""),
    ("GET", memoryview(b"abc")),
    ("HSET", "h", "f", float("inf"), "g", float("-inf"), "n", float("nan")),
    ("CONFIG GET", "maxclients"),  # redis-py splits a first argument with a space
    (b"CLIENT LIST",),
    ("PING",),
]


@pytest.mark.parametrize("args", ARGS)
def test_same_bytes_as_redis_py(args: tuple[object, ...]) -> None:
    for decode in (True, False):
        ours = HiredisPackConnection(decode_responses=decode).pack_command(*args)  # type: ignore[arg-type]
        theirs = Connection(decode_responses=decode).pack_command(*args)  # type: ignore[arg-type]
        assert b"".join(ours) == b"".join(theirs)


@pytest.mark.parametrize("bad", [True, None, object()])
def test_refused_arguments_raise_redis_py_errors(bad: object) -> None:
    with pytest.raises(DataError):
        HiredisPackConnection().pack_command("SET", "k", bad)  # type: ignore[arg-type]


def test_unencodable_text_raises_as_redis_py_does() -> None:
    with pytest.raises(UnicodeEncodeError):
        Connection().pack_command("SET", "k", "\ud800")
    with pytest.raises(UnicodeEncodeError):
        HiredisPackConnection().pack_command("SET", "k", "\ud800")


def test_other_encodings_use_redis_py_packer() -> None:
    conn = HiredisPackConnection(encoding="latin-1")
    packed = b"".join(conn.pack_command("SET", "k", "é"))
    assert packed == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n\xe9\r\n"


@pytest.mark.parametrize(
    ("url", "plain", "fast"),
    [
        ("redis://127.0.0.1:1/0", Connection, HiredisPackConnection),
        ("rediss://127.0.0.1:1/0", SSLConnection, HiredisPackSSLConnection),
        ("unix:///tmp/nowhere.sock", UnixDomainSocketConnection, HiredisPackUnixConnection),
    ],
)
def test_connect_picks_the_packing_class_for_each_scheme(url: str, plain: type, fast: type) -> None:
    client = connect(url)  # no I/O until the first command
    assert client.connection_pool.connection_class is fast
    assert issubclass(fast, plain)


async def test_routing_scripts_through_the_service_client(redis_url: str, keys: Keys) -> None:
    """A whole call's life through a client made by `connect` (hiredis packing): the
    scripts get every key and argument as redis-py would send them."""
    if is_cluster_url(redis_url):
        pytest.skip("cluster clients keep redis-py's packer")
    client = connect(redis_url)
    pool_class = client.connection_pool.connection_class
    assert pool_class in (HiredisPackConnection, HiredisPackUnixConnection)
    try:
        store = make_store(client, keys)
        await store.sync_clock()
        await store.login("g1", ready=True)
        joined = await store.join("CApack", "general", info={"reason": "é\u1234"})
        (pairing,) = joined.pairings
        assert pairing.agent_id == "g1" and pairing.info == {"reason": "é\u1234"}
        await store.answer(pairing.call_sid, pairing.reservation)
        done = await store.complete(pairing.call_sid)
        assert done.data["agent_state"] == "ready"
        status = await store.call_status("CApack")
        assert status is not None and status.state == "completed"
    finally:
        async for key in client.scan_iter(match=f"{keys.prefix}*", count=500):
            await client.unlink(key)
        await client.aclose()
