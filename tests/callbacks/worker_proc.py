"""A scheduler worker in its own OS process, for the multi-process and kill tests.

python -m tests.callbacks.worker_proc URL PREFIX NAME [--hang-before S] [--hang-after S]
[--until-idle] [--cps N --burst N] [--lease S]
Runs Scheduler.run_once() in a loop; with --until-idle it exits after 1 s with nothing due.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import replace

from callbacks.recording_dialer import RecordingDialer
from callbacks.scheduler import Scheduler
from callbacks.store import CallbackStore
from config.keys import Keys
from tests.callbacks.conftest import ALWAYS, calling_from
from tests.redis_clients import open_client


async def main(args: argparse.Namespace) -> None:
    config = calling_from(ALWAYS)
    config = replace(
        config,
        calls_per_second=args.cps,
        burst=args.burst,
        limits=replace(config.limits, lease_s=args.lease),
    )
    client = await open_client(args.url)
    keys = Keys(prefix=args.prefix)
    store = CallbackStore(client, keys, config.limits)
    dialer = RecordingDialer(
        client, keys, hang_before_s=args.hang_before, hang_after_s=args.hang_after, worker=args.name
    )
    sched = Scheduler(store, dialer, config, batch=args.batch, concurrency=args.concurrency)
    idle_since = time.monotonic()
    try:
        while True:
            handled = await sched.run_once()
            if handled:
                idle_since = time.monotonic()
            elif args.until_idle and time.monotonic() - idle_since > 1.0:
                break
            else:
                await asyncio.sleep(0.01)
    finally:
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("prefix")
    parser.add_argument("name")
    parser.add_argument("--hang-before", type=float, default=0.0)
    parser.add_argument("--hang-after", type=float, default=0.0)
    parser.add_argument("--until-idle", action="store_true")
    parser.add_argument("--cps", type=float, default=10000)
    parser.add_argument("--burst", type=int, default=10000)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=32)
    asyncio.run(main(parser.parse_args()))
