"""Redis commands on the webhook hot path, without redis-py's per-command machinery.

`Redis.execute_command` costs ~45-75 us of client CPU per command: an asyncio lock and
observability events on every pool checkout and release, a retry wrapper, a timing
wrapper, response callbacks. Measured in one process with 32 concurrent callers (HGETALL
of a session, real Redis 7 on loopback): ~50-75 us by `hgetall`, ~35 us here.

Here a connection is taken from the client's own pool once and kept in a free list; a
command is packed, sent and read on it directly (redis-py's Connection still does the
socket timeout, the periodic health check, reconnecting and the RESP parsing). A command
whose connection failed is retried once on a fresh connection, as redis-py's default
retry would. The connections stay the pool's: closing the client closes them. At most
FREE_MAX idle ones are kept here; a burst's extra connections go back to the pool, so the
rest of the service never finds the pool's limit taken by idle webhook connections.

Redis Cluster clients (key routing, MOVED/ASK) go through redis-py unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

FREE_MAX = 16


async def evalsha_loading(
    execute: Callable[..., Awaitable[Any]],
    sha: str,
    script: str,
    keys: Sequence[str],
    args: Sequence[Any],
) -> Any:
    """EVALSHA through `execute`, loading the script first if the server does not know it
    (a restart)."""
    command = ("EVALSHA", sha, len(keys), *keys, *args)
    try:
        return await execute(*command)
    except NoScriptError:
        await execute("SCRIPT", "LOAD", script)
        return await execute(*command)


class DirectCommands:
    def __init__(self, client: aioredis.Redis | RedisCluster) -> None:
        self.client = client
        self._pool: aioredis.ConnectionPool | None = None
        if isinstance(client, aioredis.Redis) and not client.single_connection_client:
            self._pool = client.connection_pool
        self._free: list[AbstractConnection] = []

    @property
    def direct(self) -> bool:
        return self._pool is not None

    async def execute(self, *args: str | int) -> Any:
        if self._pool is None:
            return await self.client.execute_command(*args)
        try:
            return await self._once(args)
        except (RedisConnectionError, ConnectionResetError, BrokenPipeError):
            return await self._once(args)  # the connection went stale; the next is fresh

    async def _once(self, args: tuple[str | int, ...]) -> Any:
        assert self._pool is not None
        conn = self._free.pop() if self._free else await self._pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await conn.send_packed_command(conn.pack_command(*args))
            return await conn.read_response()
        except BaseException as exc:
            # an error reply leaves the connection in step; anything else (cancelled, timed
            # out, broken) may leave a reply on its way: never reuse the socket as it is
            if not isinstance(exc, ResponseError):
                await conn.disconnect()
            raise
        finally:
            if len(self._free) < FREE_MAX:
                self._free.append(conn)
            else:
                await self._pool.release(conn)

    async def evalsha(self, sha: str, script: str, keys: list[str], args: list[str | int]) -> Any:
        return await evalsha_loading(self.execute, sha, script, keys, args)
