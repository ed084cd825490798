"""While nobody watches a stream, one process takes the day chart's samples for all: the
holder of a lease in Redis. Another takes over when the lease is gone (its holder died) or
released (its holder stopped)."""

from __future__ import annotations

import asyncio
from typing import Any

from queueing.supervisor_api import SAMPLER_LEASE_S, StatsBroadcaster
from queueing.supervisor_stats import day_of
from tests.supervisors.conftest import ServiceFactory, broadcaster, store_of, sup_stats


async def test_one_broadcaster_samples_for_all_and_another_takes_over(
    service: ServiceFactory,
) -> None:
    client = await service()
    source = sup_stats(client)
    redis, key = source.redis, source.keys.sup_sampler_lease()
    app_b = broadcaster(client)
    async with asyncio.timeout(5):  # the app's own broadcaster samples once at start-up,
        while True:  # then sleeps SAMPLE_EVERY_S: out of the way
            if app_b._last_sample > 0:
                break
            await asyncio.sleep(0.01)
    await redis.delete(key)  # a clean start
    first, second = StatsBroadcaster(source), StatsBroadcaster(source)
    assert await first.run_once() is not None  # takes the lease and samples
    assert await second.run_once() is None  # the lease is taken: no figures, no sample
    ttl_ms = await redis.pttl(key)
    assert 0 < ttl_ms <= SAMPLER_LEASE_S * 1000
    first._last_sample = second._last_sample = -1e9  # both due again
    assert await first.run_once() is not None  # renews its own lease
    assert await second.run_once() is None
    samples = await redis.hgetall(source.keys.sup_samples(_day(client)))
    assert len(samples) == 1  # this minute's sample, written by the holder
    await redis.delete(key)  # the holder died: its lease expired
    second._last_sample = -1e9
    assert await second.run_once() is not None
    first._last_sample = -1e9
    assert await first.run_once() is None  # it lost the lease and does not take it back
    await second.release_sampler_lease()  # the holder stops: the lease is free at once
    assert await redis.exists(key) == 0
    first._last_sample = -1e9
    assert await first.run_once() is not None


async def test_streams_are_served_whoever_holds_the_lease(service: ServiceFactory) -> None:
    client = await service()
    source = sup_stats(client)
    await source.redis.set(source.keys.sup_sampler_lease(), "another-process", px=60_000)
    b = StatsBroadcaster(source)
    sub = b.subscribe("viewer")
    assert await b.run_once() is not None  # somebody listens here: computed every tick
    event_id, data = sub.queue.get_nowait()
    assert data.startswith(f"id: {event_id}\n".encode())


def _day(client: Any) -> str:
    return day_of(store_of(client).now_ms())
