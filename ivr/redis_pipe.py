"""A small pipelining Redis client for the webhook hot path (issue #8).

redis-py sends each command on a connection checked out of a pool, and waits for its
reply before the connection serves anyone else: ~35 us of client CPU per command even
without its per-command wrappers (ivr/redis_direct.py, the previous step), most of it
the checkout, a timeout context per read, a task per write and the reading task's wake-up.

Here every webhook shares ONE connection per process (an `asyncio.Protocol` with a
`hiredis.Reader`). A command is packed by hiredis, queued, and written with the others
queued in the same turn of the event loop (one `send` for many); its future waits in a
FIFO, and replies, which Redis sends in order, are matched to futures in order as they
arrive. Nothing else per command: no pool, no lock, no task, no timer.

- Connection: host/port or Unix socket, username/password (AUTH) and db (SELECT) taken
  from the redis-py client the service already built from REDIS_URL; AUTH and SELECT are
  the first commands on every new connection. Opened on first use; one attempt at a time
  (concurrent callers wait for the same attempt), within `connect_timeout`.
- Failure: a lost connection (server restart, CLIENT KILL, network) fails every command
  in flight with redis-py's `ConnectionError`; the next command opens a new connection.
  No reply within `timeout` for the oldest command in flight (a hung or partitioned
  server): the connection is closed and its commands fail with `TimeoutError`. One check
  timer per connection, not one per command.
- Back-pressure: at most `max_in_flight` commands wait for replies; one more raises
  `PipelineFull` (a `RedisError`) at once instead of queueing without bound behind a slow
  Redis. The webhook turns any RedisError into the emergency TwiML.
- Error replies become redis-py's exception classes (`NoScriptError`, `ResponseError`...)
  through its own parser table, so callers catch the same exceptions as before.
- `evalsha` loads the script and retries on NOSCRIPT (a restarted or flushed server).

Not covered, and left to redis-py by `PipelinedRedis.for_client` returning None: Redis
Cluster (slot routing, MOVED/ASK), Sentinel (primary discovery), TLS, credential
providers, RESP3. The webhooks then go through redis-py as before.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Sequence
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis._parsers.base import BaseParser
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from config.redis_conn import HiredisPackConnection, HiredisPackUnixConnection
from ivr.redis_direct import evalsha_loading

DEFAULT_MAX_IN_FLIGHT = 4096
DEFAULT_TIMEOUT_S = 5.0  # the service's socket_timeout for redis-py (config/redis_conn.py)
DEFAULT_CONNECT_TIMEOUT_S = 2.0

Arg = str | int | bytes


def _pack(args: tuple[Arg, ...]) -> bytes:
    # hiredis's stub types the argument as a one-element tuple; any tuple is accepted
    return hiredis.pack_command(args)  # type: ignore[arg-type,no-any-return]


def _error(reply: hiredis.ReplyError) -> Exception:
    """redis-py's exception for an error reply (NOSCRIPT -> NoScriptError, ...)."""
    exc: Exception = BaseParser.parse_error(str(reply))  # type: ignore[no-untyped-call]
    return exc


class PipelineFull(RedisError):
    """Too many commands already waiting for Redis's replies on this connection."""


class _Protocol(asyncio.Protocol):
    """One connection: writes batched per loop turn, replies matched to futures in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, encoding: str | None) -> None:
        self._loop = loop
        self._reader = (
            hiredis.Reader(encoding=encoding, errors="strict") if encoding else hiredis.Reader()
        )
        self._transport: asyncio.Transport | None = None
        self.waiters: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._watch: asyncio.TimerHandle | None = None
        self.timeout = DEFAULT_TIMEOUT_S
        self.closed_exc: BaseException | None = None

    # --- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiters = self.waiters
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                self.abort(RedisConnectionError(f"Redis protocol error: {exc}"))
                return
            if reply is False:
                return
            if not waiters:  # a reply nobody asked for: the stream is out of step
                self.abort(RedisConnectionError("unexpected reply from Redis"))
                return
            future = waiters.popleft()[0]
            if future.done():  # its caller went away (cancelled): the reply is dropped
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(_error(reply))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self.closed_exc is None:
            reason = f": {exc}" if exc else ""
            self.closed_exc = RedisConnectionError(f"connection to Redis lost{reason}")
        self._fail_all(self.closed_exc)
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None

    # --- commands -----------------------------------------------------------------------
    @property
    def usable(self) -> bool:
        return self._transport is not None and self.closed_exc is None

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self._loop.create_future()
        self.waiters.append((future, time.monotonic()))
        self._out.append(packed)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        if self._watch is None:
            self._watch = self._loop.call_later(self.timeout / 4, self._check_late)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        out, self._out = self._out, []
        if self._transport is not None and out:
            self._transport.write(b"".join(out))

    def _check_late(self) -> None:
        self._watch = None
        if not self.waiters:
            return
        if time.monotonic() - self.waiters[0][1] > self.timeout:
            self.abort(RedisTimeoutError(f"no reply from Redis within {self.timeout:g} s"))
            return
        self._watch = self._loop.call_later(self.timeout / 4, self._check_late)

    def abort(self, exc: BaseException) -> None:
        """Give up on this connection: its commands fail with `exc`."""
        if self.closed_exc is None:
            self.closed_exc = exc
        self._fail_all(self.closed_exc)
        if self._transport is not None:
            self._transport.abort()  # connection_lost follows; nothing more is read

    def _fail_all(self, exc: BaseException) -> None:
        self._out.clear()
        while self.waiters:
            future = self.waiters.popleft()[0]
            if not future.done():
                future.set_exception(exc)


class PipelinedRedis:
    """One pipelined connection per process (see the module docstring)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 6379,
        path: str | None = None,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        encoding: str | None = "utf-8",
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        timeout: float = DEFAULT_TIMEOUT_S,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._host, self._port, self._path = host, port, path
        self._db, self._username, self._password = db, username, password
        self._encoding = encoding
        self.max_in_flight = max_in_flight
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._conn: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None
        self._closed = False
        self.connections_opened = 0  # for tests and diagnostics

    def __repr__(self) -> str:  # never show the password
        where = self._path or f"{self._host}:{self._port}"
        return f"PipelinedRedis({where}, db={self._db})"

    @classmethod
    def for_client(cls, client: Any, **options: Any) -> PipelinedRedis | None:
        """A pipelined client reaching the same server as redis-py's `client`, or None when
        this client cannot stand in for it (cluster, sentinel, TLS, credential provider)."""
        if not isinstance(client, aioredis.Redis) or client.single_connection_client:
            return None
        pool = client.connection_pool
        if type(pool) not in (aioredis.ConnectionPool, aioredis.BlockingConnectionPool):
            return None  # a Sentinel pool finds its primary itself
        kwargs = pool.connection_kwargs
        if kwargs.get("credential_provider") is not None or kwargs.get("protocol") in (3, "3"):
            return None
        encoding = kwargs.get("encoding", "utf-8") if kwargs.get("decode_responses") else None
        common: dict[str, Any] = {
            "db": int(kwargs.get("db") or 0),
            "username": kwargs.get("username"),
            "password": kwargs.get("password"),
            "encoding": encoding,
        }
        if kwargs.get("socket_timeout"):
            common["timeout"] = float(kwargs["socket_timeout"])
        if kwargs.get("socket_connect_timeout"):
            common["connect_timeout"] = float(kwargs["socket_connect_timeout"])
        common.update(options)
        if pool.connection_class in (UnixDomainSocketConnection, HiredisPackUnixConnection):
            return cls(path=kwargs["path"], **common)
        if pool.connection_class in (Connection, HiredisPackConnection):
            host = kwargs.get("host", "localhost")
            return cls(host=host, port=int(kwargs.get("port", 6379)), **common)
        return None  # TLS or a custom connection class

    # --- the connection -------------------------------------------------------------------
    async def _connection(self) -> _Protocol:
        if self._closed:
            raise RedisConnectionError("the pipelined Redis client is closed")
        if self._connecting is not None:  # another caller is connecting: wait for it
            return await asyncio.shield(self._connecting)
        attempt = self._connecting = asyncio.get_running_loop().create_future()
        error: RedisError
        try:
            conn = await asyncio.wait_for(self._open(), self.connect_timeout)
        except TimeoutError:
            error = RedisTimeoutError("timed out connecting to Redis")
        except OSError as exc:
            error = RedisConnectionError(f"cannot connect to Redis: {exc}")
        except RedisError as exc:  # AUTH or SELECT refused
            error = exc
        except BaseException:
            # this caller was cancelled: the others waiting see a failed attempt
            self._attempt_failed(attempt, RedisConnectionError("connection attempt cancelled"))
            raise
        else:
            self._connecting = None
            self._conn = conn
            attempt.set_result(conn)
            return conn
        self._attempt_failed(attempt, error)
        raise error

    def _attempt_failed(self, attempt: asyncio.Future[_Protocol], error: RedisError) -> None:
        self._connecting = None
        attempt.set_exception(error)
        attempt.exception()  # retrieved: there may be no other waiter

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        encoding = self._encoding
        if self._path:
            _, conn = await loop.create_unix_connection(
                lambda: _Protocol(loop, encoding), self._path
            )
        else:
            _, conn = await loop.create_connection(
                lambda: _Protocol(loop, encoding), self._host, self._port
            )
        conn.timeout = self.timeout
        try:
            setup: list[asyncio.Future[Any]] = []
            if self._password:
                auth = (self._username, self._password) if self._username else (self._password,)
                setup.append(conn.send(_pack(("AUTH", *auth))))
            if self._db:
                setup.append(conn.send(_pack(("SELECT", self._db))))
            for future in setup:
                await future
        except BaseException:
            conn.abort(RedisConnectionError("connection set-up failed"))
            raise
        self.connections_opened += 1
        return conn

    async def aclose(self) -> None:
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort(RedisConnectionError("the pipelined Redis client is closed"))
            await asyncio.sleep(0)  # let the transport's connection_lost run

    # --- commands ---------------------------------------------------------------------------
    async def execute(self, *args: Arg, retry: bool = True) -> Any:
        """One command. With `retry`, a connection lost before its reply is retried once on
        a new one: only for commands that are safe to repeat (reads, and scripts that check
        before they write, like ivr/advance.lua)."""
        try:
            return await self._send(args)
        except RedisConnectionError:
            if self._closed or not retry:
                raise
            return await self._send(args)

    def _send(self, args: tuple[Arg, ...]) -> Awaitable[Any]:
        conn = self._conn
        if conn is None or not conn.usable:
            return self._send_after_connect(args)
        if len(conn.waiters) >= self.max_in_flight:
            raise PipelineFull(
                f"{len(conn.waiters)} commands already wait for Redis (max_in_flight)"
            )
        return conn.send(_pack(args))

    async def _send_after_connect(self, args: tuple[Arg, ...]) -> Any:
        conn = await self._connection()
        if len(conn.waiters) >= self.max_in_flight:
            raise PipelineFull(
                f"{len(conn.waiters)} commands already wait for Redis (max_in_flight)"
            )
        return await conn.send(_pack(args))

    async def evalsha(self, sha: str, script: str, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        return await evalsha_loading(self.execute, sha, script, keys, args)
