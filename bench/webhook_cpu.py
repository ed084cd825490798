"""Server CPU per webhook, quickly: one `hotline serve` process (or the bare handler)
against a given Redis, driven by wrk with pre-signed requests; prints CPU us/request.

    flock /tmp/hotline-bench.lock .venv/bin/python bench/webhook_cpu.py \
        --redis redis://127.0.0.1:6379/0 [--duration 5] [--kind service|bare] [--profile]

`--profile` runs the service under pyinstrument instead and prints its top functions.
Uses bench/webhook_bench.py's pools, server start-up and CPU accounting, so the figures
compare with `make bench`'s CPU column.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402

from bench import webhook_bench as wb  # noqa: E402


async def _delete_prefix(bench: wb.Bench) -> None:
    """The Redis may be shared: delete this run's keys only (webhook_bench flushes its own)."""
    client = aioredis.Redis.from_url(bench.redis_url)
    try:
        batch = [key async for key in client.scan_iter(match=bench.prefix + "*", count=1000)]
        for start in range(0, len(batch), 1000):
            await client.delete(*batch[start : start + 1000])
    finally:
        await client.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis", required=True)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--kind", choices=("service", "bare"), default="service")
    parser.add_argument("--only", choices=("voice", "ivr"), default=None)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--half-rate", action="store_true", help="then latency at half the measured max rate"
    )
    args = parser.parse_args()
    wb.flush = _delete_prefix
    with tempfile.TemporaryDirectory(prefix="hotline-cpu-") as tmp:
        bench = wb.Bench(tmp=Path(tmp), redis_url=args.redis, redis_kind="given")
        if args.profile:
            result = wb.profile(bench, args.duration)
            for row in result["cumulative"]:
                print(f"  cum {row['cum_pct']:6.2f} %  {row['function']}")
            for row in result["self"]:
                print(f"  self {row['self_pct']:6.2f} %  {row['function']}")
            return 0
        paths = {"voice": wb.VOICE, "ivr": wb.IVR}
        if args.kind == "bare":
            wb.throughput(bench, "bare", wb.VOICE, workers=1, duration=args.duration)
            return 0
        for name, path_qs in paths.items():
            if args.only in (None, name):
                result = wb.throughput(bench, "service", path_qs, workers=1, duration=args.duration)
                if args.half_rate:
                    rate = round(result["rps"] / 2)
                    wb.at_rate(bench, "service", path_qs, rate, args.duration)
                    wb.at_rate(bench, "bare", wb.VOICE, rate, args.duration)
        asyncio.run(_delete_prefix(bench))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
