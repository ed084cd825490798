"""Cost of the supervisors' figures: `SupervisorStats.figures()` time and the size of one
stream event, with N callers waiting, the demo agents logged in and a day of samples.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/supervisors_bench.py [N]
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import redis.asyncio as aioredis

from config.keys import Keys
from config.loader import load_config
from config.users import load_users
from queueing.stats import QueueStats
from queueing.store import QueueStore
from queueing.supervisor_api import encode_event, metrics_text
from queueing.supervisor_stats import SupervisorStats, day_of, day_start_ms


async def main(waiting: int) -> None:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    redis = aioredis.Redis.from_url(url, decode_responses=True)
    prefix = f"hlbench:{uuid.uuid4().hex[:8]}:"
    keys = Keys(prefix=prefix)
    config = load_config(Path("config"))
    store = QueueStore(redis, keys, config.queues)
    await store.sync_clock()
    sup = SupervisorStats(QueueStats(store), redis, keys, load_users(Path("config/users.yaml")))
    try:
        for agent in list(config.queues.agents)[:4]:
            await store.login(agent, ready=False)
        queues = list(config.queues.queues)
        for i in range(waiting):
            await store.join(
                f"CA{i:032d}", queues[i % len(queues)], info={"caller": f"+1555{i:07d}"}
            )
        for i in range(min(waiting // 4, 100)):
            await store.leave(f"CA{i:032d}")
        now = store.now_ms()
        today = day_of(now)
        samples = {
            str(m): json.dumps({"waiting": m % 40, "sl": 0.8})
            for m in range((now - day_start_ms(today)) // 60_000)
        }
        if samples:
            await redis.hset(keys.sup_samples(today), mapping=samples)  # type: ignore[arg-type]
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            figures = await sup.figures()
            times.append((time.perf_counter() - t0) * 1000)
        event = encode_event(1, figures, "supervisor")
        print(
            json.dumps(
                {
                    "waiting": waiting,
                    "figures_ms_median": round(statistics.median(times), 2),
                    "figures_ms_max": round(max(times), 2),
                    "event_bytes": len(event),
                    "metrics_bytes": len(metrics_text(figures)),
                }
            )
        )
    finally:
        async for key in redis.scan_iter(match=f"{prefix}*", count=500):
            await redis.unlink(key)
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50))
