"""A test client for a Redis URL: a cluster client for `redis+cluster://` URLs (the form
the cluster pass gives, see tests/conftest.py), else a plain client. Both decode responses;
the cluster client has the same API for single-slot commands, scripts and pipelines, and
its SCAN visits every master. Usable in subprocesses that get only the URL."""

from __future__ import annotations

from typing import cast
from urllib.parse import urlsplit

import redis as sync_redis
import redis.asyncio as aioredis
from redis.cluster import RedisCluster

from config.redis_conn import cluster_client, discover_cluster, is_cluster_url


async def open_client(url: str) -> aioredis.Redis:
    if is_cluster_url(url):
        client = cluster_client(url)
        await discover_cluster(client)  # as the service does (config/redis_conn.open_redis)
        return cast(aioredis.Redis, client)
    return aioredis.Redis.from_url(url, decode_responses=True)


def sync_client(url: str) -> sync_redis.Redis:
    """A blocking client for `url` (a cluster client, reached through its first startup
    node, for cluster URLs)."""
    if is_cluster_url(url):
        parts = urlsplit(url)
        first = parts.netloc.rpartition("@")[2].split(",")[0]
        userinfo = parts.netloc.rpartition("@")[0]
        scheme = "rediss" if parts.scheme.lower().startswith("rediss") else "redis"
        node_url = f"{scheme}://{userinfo + '@' if userinfo else ''}{first}"
        return cast(sync_redis.Redis, RedisCluster.from_url(node_url))
    return sync_redis.Redis.from_url(url)
