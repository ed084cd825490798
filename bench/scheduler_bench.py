"""Scheduler benchmark: 10,000 jobs due at the same instant, claimed and dialled by N worker
processes through Twilio's REST API, served by the project's emulator in its own process.

"Started" means the job's dial request reached the carrier: the emulator stamps the wall
clock when its Calls.json handler receives the POST (so lateness counts the client's
request building and sending, never less). The emulated customers ring without answering
for the dial's 30 s Timeout, so every call posts its `initiated` and `ringing` status
callbacks (signed, as Twilio does) to a sink in this process while the bench runs.

Prints jobs claimed+dialled per second, lateness (carrier received - due) p50/p99/max,
the claim lateness (claimed under lease - due), duplicates (dials per job beyond one:
must be 0), the CPU milliseconds per job of the workers, the emulator(s), the sink and
Redis (a commandstats diff: other clients of the same Redis show up in it too). Each
worker keeps up to `--concurrency` dials in flight (256 by default: a dial waits for the
carrier's answer, so a worker dials at most concurrency / round trip per second).
`--carrier recording` dials through the recording dialer instead (one Redis script per
dial, no HTTP); `--carrier null` stamps each dial in the worker's memory (no carrier at
all: the scheduler's own capacity).

    REDIS_URL=redis://127.0.0.1:6379/0 flock /tmp/hotline-bench.lock \
        .venv/bin/python bench/scheduler_bench.py [--jobs 10000] [--workers 1 2 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis.asyncio as aioredis
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callbacks.jobs import Job, JobKind, NewJob  # noqa: E402
from callbacks.recording_dialer import RecordingDialer  # noqa: E402
from callbacks.scheduler import Dialer, Scheduler  # noqa: E402
from callbacks.store import CallbackStore  # noqa: E402
from callbacks.twilio_dialer import TwilioDialer  # noqa: E402
from config.calling import CallingConfig, parse_calling  # noqa: E402
from config.keys import Keys  # noqa: E402
from config.yamlload import load_yaml_text  # noqa: E402

ACCOUNT = "AC" + "b" * 32
TOKEN = "bench-auth-token"
CALLER_ID = "+861095500000"

CONFIG = """
calling:
  window:
    timezone: UTC
    hours: {daily: "00:00-24:00"}
  min_window_left: 0s
  rate_limit: {calls_per_second: 10000, burst: 10000}
  retry:
    survey: {backoff: [1m], max_attempts: 2}
"""


def config(cps: float) -> CallingConfig:
    base = parse_calling(load_yaml_text(CONFIG, "bench"), "bench")
    return replace(base, calls_per_second=cps, burst=int(max(1, cps)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- profiling (HOTLINE_BENCH_PROFILE=dir: each worker and the emulator write a cProfile) --
PROFILE_DIR = os.environ.get("HOTLINE_BENCH_PROFILE")
_profiler: Any = None


def profile_start() -> None:
    global _profiler
    if PROFILE_DIR:
        import cProfile

        _profiler = cProfile.Profile()
        _profiler.enable()


def profile_dump(name: str) -> None:
    if _profiler is not None and PROFILE_DIR:
        _profiler.disable()
        _profiler.dump_stats(os.path.join(PROFILE_DIR, f"{name}.prof"))


# --- the carrier: the emulator in its own process ------------------------------------------
def run_emulator(port: int) -> None:
    from emulator.emulator import CarrierEmulator
    from emulator.parties import CustomerPhone

    emu = CarrierEmulator(ACCOUNT, TOKEN, public_url=f"http://127.0.0.1:{port}")
    emu.default_customer = CustomerPhone(answer="no-answer")
    received: list[tuple[str, float]] = []  # (job id, wall clock at the handler)

    @web.middleware
    async def stamp(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method == "POST" and request.path.endswith("/Calls.json"):
            at = time.time()
            form = await request.post()  # aiohttp caches it for the handler
            job = parse_qs(urlsplit(str(form.get("StatusCallback", ""))).query).get("job")
            received.append((job[0] if job else "", at))
        response: web.StreamResponse = await handler(request)
        return response

    async def dials(_: web.Request) -> web.Response:
        profile_dump(f"emulator-{port}")
        return web.json_response({"dials": received, "cpu_s": time.process_time() - cpu0})

    app = emu.rest_app()
    app.middlewares.insert(0, stamp)
    app.router.add_get("/_bench/dials", dials)

    async def close(_: web.Application) -> None:
        await emu.close()

    app.on_cleanup.append(close)
    profile_start()
    cpu0 = time.process_time()  # after the imports and set-up
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


class NullDialer:
    """No carrier at all: the dial is stamped in memory (the scheduler's own capacity)."""

    def __init__(self) -> None:
        self.dials: list[tuple[str, float]] = []

    async def dial(self, job: Job) -> str:
        self.dials.append((job.id, time.time()))
        return "CA" + uuid.uuid4().hex

    async def find_call(self, job: Job) -> str | None:
        return None


# --- one worker process ---------------------------------------------------------------------
async def worker(url: str, prefix: str, name: str, opts: argparse.Namespace) -> None:
    # room for every dispatch to touch Redis at once (the recording dialer does, per dial)
    client = aioredis.Redis.from_url(
        url, decode_responses=True, max_connections=opts.concurrency + 32
    )
    keys = Keys(prefix=prefix)
    cfg = config(opts.cps)
    store = CallbackStore(client, keys, cfg.limits)
    dialer: Dialer
    if opts.carrier == "emulator":
        twilio = TwilioDialer(
            account_sid=ACCOUNT,
            auth_token=TOKEN,
            caller_id=CALLER_ID,
            public_url=opts.sink,
            api_base=opts.api,
        )
        dialer = twilio
    elif opts.carrier == "null":
        dialer = NullDialer()
    else:
        dialer = RecordingDialer(client, keys, worker=name)
    sched = Scheduler(
        store, dialer, cfg, batch=opts.batch, concurrency=opts.concurrency, poll_s=0.02
    )
    print("ready", flush=True)
    profile_start()
    cpu0 = time.process_time()  # after the imports and set-up
    seeded = asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    try:
        sched.start()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            if not seeded.done() or await store.due_count() > 0:
                continue
            await sched.stop()  # waits for the dispatches in flight ...
            if await store.due_count() == 0:
                break
            sched.start()  # ... which may have put jobs back (claimed too long ago)
        await sched.stop()
        profile_dump(f"worker-{name}")
        print(
            json.dumps(
                {
                    "worker": name,
                    "cpu_s": time.process_time() - cpu0,
                    "dialled": sched.dialled,
                    "dials": dialer.dials if isinstance(dialer, NullDialer) else [],
                }
            )
        )
    finally:
        if isinstance(dialer, TwilioDialer):
            await dialer.aclose()
        await client.aclose()


# --- the run --------------------------------------------------------------------------------
async def sink_app() -> tuple[web.AppRunner, str, list[int]]:
    """Where the emulated calls' status callbacks go (the service's endpoint, answering 204)."""
    count = [0]

    async def status(_: web.Request) -> web.Response:
        count[0] += 1
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/voice/outbound/status", status)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}", count


async def wait_up(api: str) -> None:
    host, port = urlsplit(api).hostname or "", urlsplit(api).port or 0
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError("emulator did not start")


# commands only our scripts run (their time is inside evalsha's)
SCRIPTED = {
    "hmget",
    "zscore",
    "sismember",
    "zrem",
    "zadd",
    "hset",
    "rpush",
    "ltrim",
    "hgetall",
    "hdel",
    "decr",
    "expire",
    "pexpire",
    "lindex",
    "lset",
    "set",
    "del",
    "zrangebyscore",
    "time",
    "incr",
    "get",
    "hget",
    "zcard",
}


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


async def run(args: argparse.Namespace, workers: int, url: str) -> dict[str, Any]:
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    keys = Keys(prefix=prefix)
    client = aioredis.Redis.from_url(url, decode_responses=True, max_connections=256)
    cfg = config(args.cps)
    store = CallbackStore(client, keys, replace(cfg.limits, max_jobs=args.jobs + 10))
    sink, sink_url, callbacks = await sink_app()
    emulators: list[asyncio.subprocess.Process] = []
    apis: list[str] = []
    try:
        if args.carrier == "emulator":
            # Twilio's API is a fleet, not one process: --emulators N serves it from N
            # processes, worker i posting to emulator i mod N
            for _ in range(args.emulators):
                port = free_port()
                apis.append(f"http://127.0.0.1:{port}")
                emulators.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable, __file__, "--emulator", str(port), cwd=ROOT
                    )
                )
            for api in apis:
                await wait_up(api)
        # workers start first and poll (as in production); then every job is made due at
        # one instant a little after seeding ends
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--worker",
                url,
                prefix,
                f"w{i}",
                "--cps",
                str(args.cps),
                "--batch",
                str(args.batch),
                "--concurrency",
                str(args.concurrency),
                "--carrier",
                args.carrier,
                "--api",
                apis[i % len(apis)] if apis else "",
                "--sink",
                sink_url,
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            for i in range(workers)
        ]
        for proc in procs:  # started and polling (a loaded machine takes seconds)
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line.strip() == b"ready", line
        now = await store.now_ms()
        due_ms = now + 2000 + args.jobs
        for start in range(0, args.jobs, 200):
            await asyncio.gather(
                *(
                    store.create(NewJob(JobKind.SURVEY, f"+86139{i:08d}", due_ms))
                    for i in range(start, min(args.jobs, start + 200))
                )
            )
        ready = await store.now_ms()
        for proc in procs:  # a worker stops once all jobs exist and none is due any more
            assert proc.stdin is not None
            proc.stdin.write(b"seeded\n")
            await proc.stdin.drain()
        # from here on: the run itself (not the seeding)
        stats0 = await client.info("commandstats")
        cpu0 = time.process_time()
        if ready >= due_ms:
            print(f"seeding overran the due time by {ready - due_ms} ms", file=sys.stderr)
        worker_cpu: list[float] = []
        dials: list[tuple[str, float]] = []
        for proc in procs:
            out, _ = await asyncio.wait_for(proc.communicate(), 360)
            report = json.loads(out.decode().strip().splitlines()[-1])
            worker_cpu.append(float(report["cpu_s"]))
            dials += [(str(j), float(t)) for j, t in report["dials"]]
        stats = await client.info("commandstats")
        emulator_cpu = None
        if args.carrier == "emulator":
            import aiohttp

            emulator_cpu = 0.0
            async with aiohttp.ClientSession() as http:
                for api in apis:
                    async with http.get(f"{api}/_bench/dials") as resp:
                        body = await resp.json()
                    dials += [(str(j), float(t)) for j, t in body["dials"]]
                    emulator_cpu += float(body["cpu_s"])
        elif args.carrier == "recording":
            entries = await client.lrange(keys.cb_carrier_log(), 0, -1)
            log = [json.loads(x) for x in entries]
            dials = [(str(e["job"]), float(e["t"])) for e in log]
        times = sorted(t for _, t in dials)
        due_s = due_ms / 1000.0
        late = sorted(t - due_s for t in times)
        per_job: dict[str, int] = {}
        for job_id, _ in dials:
            per_job[job_id] = per_job.get(job_id, 0) + 1
        span = times[-1] - max(due_s, times[0] - 0.001) if times else 0.0
        claimed: list[float] = []
        ids = list(per_job)
        for start in range(0, len(ids), 1000):
            async with client.pipeline(transaction=False) as pipe:
                for job_id in ids[start : start + 1000]:
                    pipe.lindex(keys.cb_attempts(job_id), 0)
                for raw in await pipe.execute():
                    if raw:
                        claimed.append((int(json.loads(raw)["at"]) - due_ms) / 1000.0)
        claimed.sort()
        # a diff of commandstats (other clients of this Redis would show up too); the
        # commands scripts run are counted under their own names and inside evalsha
        redis_calls = {}
        for name, v in stats.items():
            before = stats0.get(name, {"calls": 0, "usec": 0})
            if isinstance(v, dict) and v["calls"] > before["calls"]:
                redis_calls[name.removeprefix("cmdstat_")] = {
                    "calls": v["calls"] - before["calls"],
                    "usec": v["usec"] - before["usec"],
                }
        inner = {"evalsha", "eval", "info"}
        redis_usec = sum(
            v["usec"] for k, v in redis_calls.items() if k in ("evalsha", "eval")
        ) + sum(v["usec"] for k, v in redis_calls.items() if k not in inner and k not in SCRIPTED)
        n = max(1, len(times))
        return {
            "carrier": args.carrier,
            "jobs": args.jobs,
            "workers": workers,
            "emulators": len(apis),
            "cps_limit": args.cps,
            "dialled": len(times),
            "duplicates": sum(v - 1 for v in per_job.values()),
            "missing": args.jobs - len(per_job),
            "jobs_per_s": len(times) / span if span > 0 else None,
            "span_s": span,
            "lateness_ms": {
                "p50": statistics.median(late) * 1000 if late else None,
                "p99": pct(late, 0.99) * 1000 if late else None,
                "max": late[-1] * 1000 if late else None,
            },
            "claim_lateness_ms": {
                "p50": statistics.median(claimed) * 1000 if claimed else None,
                "p99": pct(claimed, 0.99) * 1000 if claimed else None,
                "max": claimed[-1] * 1000 if claimed else None,
            },
            "cpu_ms_per_job": {
                "workers": sum(worker_cpu) * 1000 / n,
                "emulator": emulator_cpu * 1000 / n if emulator_cpu is not None else None,
                "sink": (time.process_time() - cpu0) * 1000 / n,
                "redis": redis_usec / 1000 / n,
            },
            "status_callbacks_received": callbacks[0],
            "redis_commands": redis_calls,
        }
    finally:
        for emulator in emulators:
            emulator.kill()
            await emulator.wait()
        await sink.cleanup()
        batch: list[str] = []
        async for key in client.scan_iter(match=f"{prefix}*", count=2000):
            batch.append(key)
            if len(batch) >= 2000:
                await client.unlink(*batch)
                batch = []
        if batch:
            await client.unlink(*batch)
        await client.aclose()


def show(r: dict[str, Any]) -> None:
    late, claim, cpu = r["lateness_ms"], r["claim_lateness_ms"], r["cpu_ms_per_job"]
    print(
        f"{r['workers']} worker(s), {r['jobs']} jobs, carrier {r['carrier']}"
        f" ({r['emulators']} process(es)), cps limit"
        f" {r['cps_limit']:g}: dialled {r['dialled']}, duplicates {r['duplicates']},"
        f" missing {r['missing']}"
    )
    print(f"  {r['jobs_per_s']:,.0f} jobs/s (first to last dial {r['span_s']:.2f} s)")
    print(
        f"  lateness (carrier received - due): p50 {late['p50']:.0f} ms, p99 {late['p99']:.0f}"
        f" ms, max {late['max']:.0f} ms (target p99 < 1000 ms)"
    )
    print(
        f"  claim lateness: p50 {claim['p50']:.0f} ms, p99 {claim['p99']:.0f} ms,"
        f" max {claim['max']:.0f} ms"
    )
    parts = ", ".join(f"{k} {v:.3f}" for k, v in cpu.items() if v is not None)
    print(f"  CPU ms per job: {parts}")


async def main(args: argparse.Namespace) -> None:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    results = [await run(args, w, url) for w in args.workers]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            show(r)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--emulator":
        run_emulator(int(sys.argv[2]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _, _, url, prefix, name, *rest = sys.argv
        extra = argparse.ArgumentParser()
        extra.add_argument("--cps", type=float, default=10_000)
        extra.add_argument("--batch", type=int, default=200)
        extra.add_argument("--concurrency", type=int, default=256)
        extra.add_argument("--carrier", default="emulator")
        extra.add_argument("--api", default="")
        extra.add_argument("--sink", default="")
        asyncio.run(worker(url, prefix, name, extra.parse_args(rest)))
    else:
        parser = argparse.ArgumentParser()
        parser.add_argument("--jobs", type=int, default=10_000)
        parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
        parser.add_argument("--cps", type=float, default=10_000)
        parser.add_argument("--batch", type=int, default=200)
        parser.add_argument("--concurrency", type=int, default=256)
        parser.add_argument(
            "--carrier", choices=["emulator", "recording", "null"], default="emulator"
        )
        parser.add_argument("--emulators", type=int, default=1)
        parser.add_argument("--json", action="store_true")
        asyncio.run(main(parser.parse_args()))
