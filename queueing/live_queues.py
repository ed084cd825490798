"""Who is waiting in each queue, read for the statistics in (usually) one round trip.

`QueueStore.waiting_now()` asks Redis 22 questions per queue (a count per priority band
and each band's head): 1,100 commands for 50 queues, most of a statistics read's cost in
redis-py. Here each queue's waiting set is read whole when it holds at most `HEAD_MAX`
calls (two commands per queue: its size and its first `HEAD_MAX` members with scores), and
the counts per band and the oldest join time come from the scores; only a queue longer
than that gets the per-band questions, in a second round trip. Same figures, same shape.
"""

from __future__ import annotations

from typing import Any

from queueing.store import PRIORITY_SPAN, QueueStore

HEAD_MAX = 100  # waiting calls read per queue (the supervisors list the first 100)


def _str(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def read_waiting(
    store: QueueStore,
) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    """Per queue: {waiting, by_priority, oldest_joined_ms} (as `waiting_now`, without
    `ready_agents`), and the CallSids of the first `HEAD_MAX` waiting calls in order."""
    k, g = store.keys, store.group
    names = store.queue_names
    pipe = store.redis.pipeline(transaction=False)
    for name in names:
        key = k.route_waiting(g, name)
        pipe.zcard(key)
        pipe.zrange(key, 0, HEAD_MAX - 1, withscores=True)
    rows = await pipe.execute()
    out: dict[str, dict[str, Any]] = {}
    heads: dict[str, list[str]] = {}
    long_queues: list[str] = []
    for i, name in enumerate(names):
        size, members = int(rows[2 * i]), rows[2 * i + 1]
        heads[name] = [_str(m) for m, _ in members]
        if size > len(members):
            long_queues.append(name)
            continue
        counts = [0] * 10
        oldest: int | None = None
        for _, score in members:
            band, joined = divmod(int(score), PRIORITY_SPAN)
            counts[band] += 1
            oldest = joined if oldest is None else min(oldest, joined)
        out[name] = {
            "waiting": size,
            "by_priority": {str(9 - band): n for band, n in enumerate(counts) if n},
            "oldest_joined_ms": oldest,
        }
    if long_queues:
        out.update(await _read_bands(store, long_queues))
    return {name: out[name] for name in names}, heads


async def _read_bands(store: QueueStore, names: list[str]) -> dict[str, dict[str, Any]]:
    """Counts per priority band and each band's head, for queues too long to read whole."""
    k, g = store.keys, store.group
    pipe = store.redis.pipeline(transaction=False)
    for name in names:
        key = k.route_waiting(g, name)
        pipe.zcard(key)
        for band in range(10):
            low = band * PRIORITY_SPAN
            pipe.zcount(key, low, f"({low + PRIORITY_SPAN}")
            pipe.zrangebyscore(key, low, f"({low + PRIORITY_SPAN}", start=0, num=1, withscores=True)
    rows = await pipe.execute()
    out: dict[str, dict[str, Any]] = {}
    step = 21
    for i, name in enumerate(names):
        row = rows[i * step : (i + 1) * step]
        by_prio: dict[str, int] = {}
        oldest: int | None = None
        for band in range(10):
            n, head = int(row[1 + 2 * band]), row[2 + 2 * band]
            if n:
                by_prio[str(9 - band)] = n
            if head:
                joined = int(float(head[0][1])) % PRIORITY_SPAN
                oldest = joined if oldest is None else min(oldest, joined)
        out[name] = {"waiting": int(row[0]), "by_priority": by_prio, "oldest_joined_ms": oldest}
    return out
