"""What a SIGKILLed Redis keeps: every acknowledged write, with AOF on (the persistence the
service needs, docs/OPERATIONS.md); without it, everything since the last snapshot.

`kill -9` of the server process measures the process-crash window: Redis writes the
AOF buffer to the file before it replies, so with `appendfsync everysec` (or always) an
acknowledged write survives a process crash. A power loss or a kernel crash can also lose
what is written but not yet fsync-ed: up to about 1 s (2 s when a fsync stalls) with
everysec, nothing with always. bench/aof_window.py measures both policies.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.reliability.redis_proc import RedisProc


def write_then_kill(server: RedisProc, seconds: float) -> tuple[int, int]:
    """(acknowledged RPUSHes, entries found after the restart)."""
    acked = 0
    stop = threading.Event()

    def writer() -> None:
        nonlocal acked
        client = redis.Redis(port=server.port, socket_timeout=2, retry=Retry(NoBackoff(), 0))
        try:
            while not stop.is_set():
                client.rpush("seq", acked + 1)
                acked += 1
        except (redis.ConnectionError, redis.TimeoutError):
            pass
        finally:
            client.close()

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(seconds)
    server.kill()  # mid-write: the writer is in a loop of acknowledged pushes
    stop.set()
    thread.join(5)
    server.start()
    client = redis.Redis(port=server.port)
    try:
        return acked, int(client.llen("seq"))
    finally:
        client.close()


@pytest.mark.parametrize("fsync", ["everysec", "always"])
def test_acknowledged_writes_survive_a_sigkill_with_aof(tmp_path: Path, fsync: str) -> None:
    server = RedisProc(tmp_path / fsync, fsync=fsync)
    server.start()
    try:
        acked, surviving = write_then_kill(server, 0.6)
    finally:
        server.stop()
    assert acked > 100
    assert surviving >= acked  # (one more if the kill landed between apply and reply)


def test_without_aof_a_sigkill_loses_the_writes(tmp_path: Path) -> None:
    """The control: the same kill with appendonly off loses them (so the test above can
    fail: it is the AOF that keeps the queues, not luck)."""
    server = RedisProc(tmp_path / "none", fsync="everysec", appendonly=False)
    server.start()
    try:
        acked, surviving = write_then_kill(server, 0.3)
    finally:
        server.stop()
    assert acked > 100 and surviving == 0
