"""A test client for a Redis URL: a cluster client for `redis+cluster://` URLs (the form
the cluster pass gives, see tests/conftest.py), else a plain client. Both decode responses;
the cluster client has the same API for single-slot commands, scripts and pipelines, and
its SCAN visits every master. Usable in subprocesses that get only the URL."""

from __future__ import annotations

from typing import cast

import redis.asyncio as aioredis

from config.redis_conn import cluster_client, discover_cluster, is_cluster_url


async def open_client(url: str) -> aioredis.Redis:
    if is_cluster_url(url):
        client = cluster_client(url)
        await discover_cluster(client)  # as the service does (config/redis_conn.open_redis)
        return cast(aioredis.Redis, client)
    return aioredis.Redis.from_url(url, decode_responses=True)
