"""Event-loop stalls of one service process under a constant rate of /voice webhooks.

The service runs in this process as `hotline serve` would (background loops on, speech
off, GC tuned), with asyncio's debug hooks reporting every callback that holds the loop
longer than `--slow-ms`, and a sampler measuring loop lag every 5 ms. The constant-rate
load (bench/loadgen.py) comes from a child process.

    flock /tmp/hotline-bench.lock .venv/bin/python bench/loop_lag.py \
        --redis redis://127.0.0.1:6379/14 [--rate 600] [--duration 10] [--slow-ms 3]

Debug mode adds its own cost per callback: read the stalls, not the throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from bench import webhook_bench as wb  # noqa: E402

CHILD = """
import asyncio, pickle, sys
from bench.loadgen import constant_rate
port, rate, duration, path = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
reqs = pickle.load(open(path, "rb"))
r = asyncio.run(constant_rate("127.0.0.1", port, reqs, rate=rate, duration_s=duration,
                              connections=64, expect=b"<Gather"))
print(f"LOAD sent={r.sent} p50={r.percentile(50)*1000:.2f}ms p99={r.percentile(99)*1000:.2f}ms "
      f"max={max(r.latencies_s, default=0)*1000:.1f}ms bad={r.bad_status + r.bad_body} "
      f"errors={r.errors}")
"""


class SlowCallbacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        m = re.match(r"Executing (.*) took ([0-9.]+) seconds", text, re.S)
        if m:
            what = re.sub(r"0x[0-9a-f]+|\d+\.\d+", "_", m.group(1))[:160]
            self.seen.append((float(m.group(2)), what))


async def lag_sampler(out: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(0.005)
        out.append(loop.time() - before - 0.005)


async def serve(args: argparse.Namespace, bench: wb.Bench) -> None:
    from config.loader import load_config
    from config.logs import setup_logging
    from config.settings import Settings
    from hotline.app import create_app
    from hotline.workers import tune_gc
    from ivr.accounts import FileAccountBackend

    port = wb.free_port()
    env = bench.env()
    env["PORT"] = str(port)
    settings = Settings.from_env(env)
    setup_logging()
    logging.getLogger("hotline").setLevel(logging.WARNING)  # the stalls, not the webhooks
    slow = SlowCallbacks()
    logging.getLogger("asyncio").addHandler(slow)
    config = load_config(settings.config_dir)
    accounts = FileAccountBackend.load(settings.config_dir / "accounts.yaml")
    runner = web.AppRunner(create_app(settings, config, accounts), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    tune_gc()
    loop = asyncio.get_running_loop()
    loop.set_debug(args.debug)
    loop.slow_callback_duration = args.slow_ms / 1000
    sids = bench.sids.take(int(args.rate * (args.duration + 3)))
    pool_path = bench.tmp / "reqs.pickle"
    import pickle

    pool_path.write_bytes(pickle.dumps(wb.raw_requests(wb.pool(wb.VOICE, sids), port)))
    lags: list[float] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(lag_sampler(lags, stop))
    child_env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(port), str(args.rate), str(args.duration),
        str(pool_path), env=child_env, stdout=subprocess.PIPE,
    )  # fmt: skip
    cpu0, t0 = time.process_time(), time.monotonic()
    out, _ = await proc.communicate()
    cpu = time.process_time() - cpu0
    stop.set()
    await sampler
    await runner.cleanup()
    print(out.decode().strip())
    print(f"server CPU {cpu:.2f} s over {time.monotonic() - t0:.1f} s")
    lags.sort()
    if lags:
        pick = [lags[int(q * (len(lags) - 1))] * 1000 for q in (0.5, 0.99, 0.999)]
        print(
            f"loop lag ({len(lags)} samples): p50 {pick[0]:.2f} ms  p99 {pick[1]:.2f} ms  "
            f"p99.9 {pick[2]:.2f} ms  max {lags[-1] * 1000:.2f} ms"
        )
    by_what: Counter[str] = Counter()
    worst: dict[str, float] = {}
    for took, what in slow.seen:
        by_what[what] += 1
        worst[what] = max(worst.get(what, 0.0), took)
    print(f"callbacks over {args.slow_ms} ms: {len(slow.seen)}")
    for what, count in by_what.most_common(15):
        print(f"  {count:5d} x, worst {worst[what] * 1000:7.1f} ms: {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis", required=True)
    parser.add_argument("--rate", type=float, default=600.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--slow-ms", type=float, default=3.0)
    parser.add_argument("--no-debug", dest="debug", action="store_false")
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory(prefix="hotline-lag-") as tmp:
        bench = wb.Bench(tmp=Path(tmp), redis_url=args.redis, redis_kind="given")
        asyncio.run(serve(args, bench))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
