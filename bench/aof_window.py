"""How many acknowledged writes a SIGKILLed Redis loses, per `appendfsync` policy.

A writer sends one `RPUSH` at a time (each acknowledged before the next) to a fresh
redis-server with AOF on; the server is SIGKILLed after a random delay, restarted on the
same AOF, and the list length is compared with the number of acknowledged pushes.
lost = acknowledged - surviving; window = lost / write rate.

Note: SIGKILL of the server process loses only what is not yet write(2)-ten to the AOF
(the kernel's page cache survives a process crash); a power loss or kernel panic also
loses what is written but not fsync-ed. `kill -9` therefore measures the process-crash
window; the power-loss window for everysec is bounded by the fsync period (1 s, up to 2 s
when an fsync is slow, per redis.conf), and for always it is zero.

    .venv/bin/python bench/aof_window.py --trials 5 --policies always everysec no
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.reliability.redis_proc import RedisProc  # noqa: E402


def trial(policy: str, run_s: float, tmp: Path) -> tuple[int, int, float]:
    """(acknowledged, surviving, writes per second) for one kill."""
    server = RedisProc(tmp / f"{policy}-{time.monotonic_ns()}", fsync=policy)
    server.start()
    acked = 0
    stop = threading.Event()

    def writer() -> None:
        nonlocal acked
        client = redis.Redis(port=server.port, socket_timeout=2, retry=Retry(NoBackoff(), 0))
        try:
            while not stop.is_set():
                client.rpush("seq", acked + 1)
                acked += 1  # only after the server acknowledged it
        except (redis.ConnectionError, redis.TimeoutError):
            pass
        finally:
            client.close()

    thread = threading.Thread(target=writer)
    started = time.monotonic()
    thread.start()
    time.sleep(run_s * random.uniform(0.6, 1.0))
    server.kill()
    elapsed = time.monotonic() - started
    stop.set()
    thread.join(5)
    server.start()
    client = redis.Redis(port=server.port)
    surviving = int(client.llen("seq"))
    client.close()
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)
    return acked, surviving, acked / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="writing time before the kill")
    parser.add_argument("--policies", nargs="+", default=["always", "everysec"])
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aof-window-"))
    try:
        for policy in args.policies:
            losses, windows, rates = [], [], []
            for _ in range(args.trials):
                acked, surviving, rate = trial(policy, args.seconds, tmp)
                lost = max(0, acked - surviving)
                losses.append(lost)
                windows.append(lost / rate * 1000 if rate else 0.0)
                rates.append(rate)
            print(
                f"appendfsync {policy:8s}: lost acknowledged writes per kill "
                f"max {max(losses)} median {statistics.median(losses):.0f} "
                f"(window max {max(windows):.1f} ms) at ~{statistics.mean(rates):.0f} writes/s, "
                f"{args.trials} kills"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
