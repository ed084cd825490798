"""In-process CPU per request of the hold loop and the statistics endpoint, with the queue
phase of bench/webhook_bench.py (50 queues, 1,000 agents logged in not ready, 500 callers
waiting), through the real app (signed webhooks, bearer token) on one event loop.

CPU is this process's `time.process_time()` over N sequential requests, so it includes the
in-process HTTP client; the bare route (a fixed TwiML, as bench/bare_server.py) measured
the same way is the baseline to subtract. `--profile` writes a cProfile of each phase.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/holdstats_profile.py \
        [--hold 3000] [--stats 100] [--profile out-dir] \
        [--under-load SECONDS [--hold-rate R] [--workers]]

It also times the event loop's longest callbacks (and garbage collections) while
`figures()` and ten queue models are computed; `--under-load` does the same while wrk
(or, for the hold loop with `--hold-rate`, bench/loadgen.py at a constant rate) drives
this process's server, next to a bare GET handler and one returning a body as large as
the statistics response (run it under `flock /tmp/hotline-bench.lock`).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.webhook_bench import (  # noqa: E402
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_URL,
    STATS_TOKEN,
    WRK_THREADS,
    Bench,
    big_config,
    call_params,
    prepare_queues,
    raw_requests,
    run_wrk,
    signed,
    write_pool,
)
from config.loader import load_config  # noqa: E402
from config.settings import Settings  # noqa: E402
from hotline.app import create_app  # noqa: E402
from hotline.workers import tune_gc  # noqa: E402
from ivr.accounts import FileAccountBackend  # noqa: E402
from queueing.supervisor_api import SUP_STATS  # noqa: E402
from queueing.supervisor_stats import gzip_head  # noqa: E402


def _where(task: asyncio.Task[Any]) -> str:
    """Where the task is suspended: its innermost frames of this project's code."""
    frames: list[str] = []
    coro: Any = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None)
        if frame is not None and ".venv" not in frame.f_code.co_filename:
            frames.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
        coro = getattr(coro, "cr_await", None)
    return "/".join(frames[-2:])


class Stalls:
    """The longest event-loop callbacks (each a run of a task's code between two awaits),
    timed by wrapping asyncio's Handle._run while `on`."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, str]] = []
        self.on = False
        self._gc_t0 = 0.0
        self._orig = asyncio.events.Handle._run

    def __enter__(self) -> Stalls:
        orig, seen, me = self._orig, self.seen, self

        def timed(handle: asyncio.events.Handle) -> None:
            if not me.on:
                orig(handle)
                return
            task = getattr(getattr(handle, "_callback", None), "__self__", None)
            before = _where(task) if isinstance(task, asyncio.Task) else ""
            t0 = time.perf_counter()
            orig(handle)
            took = time.perf_counter() - t0
            if took > 0.001:
                after = _where(task) if isinstance(task, asyncio.Task) else repr(handle)[:80]
                seen.append((took, f"{before} -> {after}"))

        asyncio.events.Handle._run = timed  # type: ignore[method-assign]
        gc.callbacks.append(self._gc)
        return self

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_t0 = time.perf_counter()
        elif self.on:
            took = time.perf_counter() - self._gc_t0
            if took > 0.001:
                self.seen.append((took, f"gc generation {info['generation']}"))

    def __exit__(self, *exc: object) -> None:
        asyncio.events.Handle._run = self._orig  # type: ignore[method-assign]
        gc.callbacks.remove(self._gc)

    def report(self, name: str) -> None:
        seen = sorted(self.seen, reverse=True)
        total = sum(t for t, _ in seen)
        print(f"{name}: {len(seen)} callbacks over 1 ms, {total * 1e3:.1f} ms in all; longest:")
        for took, what in seen[:8]:
            print(f"  {took * 1e3:7.2f} ms  {what}")
        self.seen.clear()


BARE = '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hello</Say></Response>'


BIG = [b"{}"]
BIG_GZ = [b""]  # the gzipped statistics body, for the bare handler of the same size
GZIP = {"Accept-Encoding": "gzip, deflate, br"}  # what browsers and wallboards send
IDENTITY = {"Accept-Encoding": "identity"}


async def bare_get(request: web.Request) -> web.Response:
    return web.Response(text=BARE, content_type="text/xml")


async def bare_big(request: web.Request) -> web.Response:
    return web.Response(body=BIG[0], content_type="application/json")


async def bare_big_gz(request: web.Request) -> web.Response:
    return web.Response(
        body=BIG_GZ[0],
        content_type="application/json",
        headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
    )


def run_wrk_with(
    bench: Bench,
    port: int,
    pool_file: Path,
    seconds: float,
    env: dict[str, str],
    conns: int,
    accept_encoding: str | None,
) -> dict[str, Any]:
    """`run_wrk` with an Accept-Encoding header on the GETs (bench/wrk_pool.lua sends none:
    a copy of it with the header is written beside the pool file)."""
    if accept_encoding is None:
        return run_wrk(port, pool_file, seconds, env, conns)
    script = (ROOT / "bench" / "wrk_pool.lua").read_text()
    needle = '{["Authorization"] = auth}'
    if needle not in script:
        raise RuntimeError("bench/wrk_pool.lua changed: the GET headers are not found")
    script = script.replace(
        needle, '{["Authorization"] = auth, ["Accept-Encoding"] = os.getenv("WRK_ACCEPT")}'
    )
    path = bench.tmp / "wrk_pool_accept.lua"
    path.write_text(script)
    env = dict(os.environ, WRK_POOL=str(pool_file), WRK_THREADS=str(WRK_THREADS), **env,
               WRK_ACCEPT=accept_encoding)  # fmt: skip
    out = subprocess.run(
        ["wrk", f"-t{WRK_THREADS}", f"-c{conns}", f"-d{seconds:g}s", "--timeout", "5s",
         "-s", str(path), f"http://127.0.0.1:{port}"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    for line in out.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            data: dict[str, Any] = json.loads(line[len("WRK_JSON ") :])
            return data
    raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")


def gzip_levels(body: bytes) -> None:
    """Time and size of compressing the statistics body once, per zlib level."""
    for level in (1, 2, 3, 4, 5, 6, 9):
        n = 20
        t0 = time.perf_counter()
        for _ in range(n):
            head = gzip_head(body, level)
        ms = (time.perf_counter() - t0) / n * 1e3
        print(
            f"gzip level {level}: {ms:6.2f} ms per compression, {len(head.body):8,} bytes"
            f" ({len(head.body) / len(body):.3f} of {len(body):,})"
        )


async def gzip_in_thread_vs_loop(body: bytes) -> None:
    """The longest event-loop callback while the body is compressed in a thread, and
    what compressing it on the loop would hold the loop for."""
    with Stalls() as stalls:
        stalls.on = True
        for _ in range(10):
            await asyncio.to_thread(gzip_head, body)
        stalls.report("10 compressions in a thread")
    t0 = time.perf_counter()
    gzip_head(body)
    print(f"on the loop one compression would block it {(time.perf_counter() - t0) * 1e3:.2f} ms")


async def bare(request: web.Request) -> web.Response:
    await request.post()
    return web.Response(text=BARE, content_type="text/xml")


Request = tuple[str, str, dict[str, str] | None, dict[str, str]]


async def measure(
    client: TestClient[Any, Any],
    requests: list[Request],
    profile: Path | None,
    name: str,
) -> float:
    """Mean CPU microseconds per request (sequential requests)."""
    prof = cProfile.Profile() if profile else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if prof:
        prof.enable()
    for method, path, data, headers in requests:
        resp = await client.request(method, path, data=data, headers=headers)
        body = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{path}: {resp.status} {body[:200]!r}")
    if prof:
        prof.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    n = len(requests)
    print(
        f"{name:8s} {n:6d} requests  cpu {cpu / n * 1e6:9.1f} us/req"
        f"  wall {wall / n * 1e6:9.1f} us/req"
    )
    if prof and profile:
        out = profile / f"{name}.pstats"
        prof.dump_stats(out)
        pstats.Stats(str(out)).sort_stats("cumulative").print_stats(35)
    return cpu / n * 1e6


CHILD = """
import asyncio, pickle, sys
from bench.loadgen import constant_rate
port, rate, duration, path = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
reqs = pickle.load(open(path, "rb"))
r = asyncio.run(constant_rate("127.0.0.1", port, reqs, rate=rate, duration_s=duration,
                              connections=64, expect=b"<Response"))
print(f"constant rate: sent={r.sent} p50={r.percentile(50)*1000:.2f}ms "
      f"p99={r.percentile(99)*1000:.2f}ms max={max(r.latencies_s, default=0)*1000:.1f}ms "
      f"late={r.late_starts} bad={r.bad_status + r.bad_body} errors={r.errors}")
"""


async def under_load(
    client: TestClient[Any, Any],
    bench: Bench,
    waiting: list[tuple[str, str]],
    seconds: float,
    hold_rate: float = 0.0,
    only: frozenset[str] = frozenset(),
) -> None:
    """wrk (in a thread) against this process's server; callbacks over 1 ms reported.
    With `hold_rate`, the hold loop at that constant rate (bench/loadgen.py in a child)."""
    port = client.server.port
    assert port is not None
    hold = [signed(f"/queue/hold?lang=en&q={queue}", call_params(sid)) for sid, queue in waiting]
    if hold_rate:
        import pickle
        import subprocess

        reqs = raw_requests(hold, port)
        count = int(hold_rate * seconds) + 1
        path = bench.tmp / "hold.pickle"
        path.write_bytes(pickle.dumps((reqs * (count // len(reqs) + 1))[:count]))
        with Stalls() as stalls:
            stalls.on = True
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", CHILD, str(port), str(hold_rate), str(seconds), str(path),
                env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE,
            )  # fmt: skip
            out, _ = await proc.communicate()
            print(out.decode().strip())
            stalls.report(f"hold at {hold_rate:.0f}/s")
    hold_file = write_pool(bench.tmp / "hold.txt", hold)
    stats_file = write_pool(bench.tmp / "stats.txt", [("/api/v1/stats", "", "")])
    get_env = {"WRK_METHOD": "GET", "WRK_AUTH": f"Bearer {STATS_TOKEN}"}
    # the bare handler, and the same with a body as large as the statistics response
    bare_file = write_pool(bench.tmp / "bare.txt", [("/bare-get", "", "")])
    big_file = write_pool(bench.tmp / "big.txt", [("/bare-big", "", "")])
    big_gz_file = write_pool(bench.tmp / "big-gz.txt", [("/bare-big-gz", "", "")])
    auth = {"Authorization": f"Bearer {STATS_TOKEN}"}
    resp = await client.get("/api/v1/stats", headers={**auth, **IDENTITY})
    BIG[0] = await resp.read()
    resp = await client.get("/api/v1/stats", headers={**auth, **GZIP})
    BIG_GZ[0] = await resp.read()
    assert resp.headers.get("Content-Encoding") == "gzip"
    print(f"statistics body: {len(BIG[0]):,} bytes, gzipped {len(BIG_GZ[0]):,} bytes")
    metrics = await (await client.get("/metrics", headers={**auth, **IDENTITY})).read()
    metrics_gz = await (await client.get("/metrics", headers={**auth, **GZIP})).read()
    print(f"/metrics body: {len(metrics):,} bytes, gzipped {len(metrics_gz):,} bytes")
    gz = GZIP["Accept-Encoding"]
    rps: dict[str, float] = {}
    for name, pool_file, env, conns, accept in (
        ("bare", bare_file, get_env, 4, None),
        ("bare-big", big_file, get_env, 4, None),
        ("bare-big-gz", big_gz_file, get_env, 4, gz),
        ("hold", hold_file, None, 64, None),
        ("stats", stats_file, get_env, 4, None),
        ("stats-gz", stats_file, get_env, 4, gz),
    ):
        if only and name not in only and name != "bare":  # bare: the baseline
            continue
        with Stalls() as stalls:
            stalls.on = True
            cpu0 = time.process_time()
            r = await asyncio.to_thread(
                run_wrk_with, bench, port, pool_file, seconds, env or {}, conns, accept
            )
            cpu = time.process_time() - cpu0
            n = max(1, r["requests"])
            rps[name] = r["rps"]
            ratio = f", {r['rps'] / rps['bare']:.3f} of bare" if "bare" in rps else ""
            print(
                f"{name} under wrk: {r['rps']:.0f} req/s{ratio}, p99 {r['p99_us'] / 1000:.1f} ms, "
                f"cpu {cpu / n * 1e6:.0f} us/req (wrk's thread not included)"
            )
            stalls.report(f"{name} under load")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hold", type=int, default=3000)
    parser.add_argument("--stats", type=int, default=100)
    parser.add_argument("--figures", type=int, default=20, help="direct figures() calls")
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument(
        "--under-load", type=float, default=0.0, help="seconds of wrk per endpoint, stalls timed"
    )
    parser.add_argument("--workers", action="store_true", help="background loops on")
    parser.add_argument(
        "--hold-rate", type=float, default=0.0, help="with --under-load: hold at this rate"
    )
    parser.add_argument(
        "--only",
        default="",
        help="with --under-load: these runs only (comma-separated: bare,bare-big,"
        "bare-big-gz,hold,stats,stats-gz; bare is the baseline of the ratios)",
    )
    parser.add_argument(
        "--gzip-levels", action="store_true", help="time compressing the stats body per level"
    )
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    with tempfile.TemporaryDirectory(prefix="hotline-holdstats-") as tmp:
        bench = Bench(tmp=Path(tmp), redis_url=redis_url)
        config_dir = big_config(bench)
        bench.config_dir = config_dir
        config = load_config(config_dir)
        settings = Settings(
            redis_url=redis_url,
            key_prefix=bench.prefix,
            public_url=PUBLIC_URL,
            config_dir=config_dir,
            json_logs=True,
            auth_token=AUTH_TOKEN,
            account_sid=ACCOUNT_SID,
            api_tokens={STATS_TOKEN: "supervisor"},
        )
        accounts = FileAccountBackend.load(config_dir / "accounts.yaml")
        app = create_app(settings, config, accounts, run_workers=args.workers)
        app.router.add_post("/bare", bare)
        app.router.add_get("/bare-get", bare_get)
        app.router.add_get("/bare-big", bare_big)
        app.router.add_get("/bare-big-gz", bare_big_gz)
        # the bodies as sent: no decompression in this process's CPU
        client = TestClient(TestServer(app), auto_decompress=False)
        await client.start_server()
        try:
            waiting = await prepare_queues(bench, config_dir)
            form = {"Content-Type": "application/x-www-form-urlencoded"}
            hold: list[Request] = []
            for i in range(args.hold):
                sid, queue = waiting[i % len(waiting)]
                path, sig, _ = signed(f"/queue/hold?lang=en&q={queue}", call_params(sid))
                hold.append(("POST", path, call_params(sid), {**form, "X-Twilio-Signature": sig}))
            bare_reqs: list[Request] = [
                ("POST", "/bare", call_params(sid), form) for sid, _ in waiting
            ]
            auth = {"Authorization": f"Bearer {STATS_TOKEN}"}
            stats: list[Request] = [("GET", "/api/v1/stats", None, {**auth, **IDENTITY})] * (
                args.stats
            )
            stats_gz: list[Request] = [("GET", "/api/v1/stats", None, {**auth, **GZIP})] * (
                args.stats
            )
            if args.profile:
                args.profile.mkdir(parents=True, exist_ok=True)
            await measure(client, bare_reqs[:50] + hold[:50] + stats[:2], None, "warm-up")
            tune_gc()  # as `hotline serve` does after start-up
            base = await measure(client, (bare_reqs * 6)[: args.hold], None, "bare")
            held = await measure(client, hold, args.profile, "hold")
            st = await measure(client, stats, args.profile, "stats")
            st_gz = await measure(client, stats_gz, args.profile, "stats-gz")
            print(
                f"hold  - bare: {held - base:9.1f} us/req;  stats - bare: {st - base:9.1f} us/req;"
                f"  stats-gz - bare: {st_gz - base:9.1f} us/req"
            )
            source = app[SUP_STATS]
            if args.gzip_levels:
                body = await (
                    await client.get("/api/v1/stats", headers={**auth, **IDENTITY})
                ).read()
                gzip_levels(body)
                await gzip_in_thread_vs_loop(body)
            if args.under_load:
                only = frozenset(n for n in args.only.split(",") if n)
                await under_load(client, bench, waiting, args.under_load, args.hold_rate, only)
            with Stalls() as stalls:
                stalls.on = True
                await source.figures()
                stalls.report("figures()")
                stats_obj = source.stats
                for name in list(stats_obj.store.queue_names)[:10]:
                    await stats_obj._read_model(name)
                stalls.report("10 queue models")
                await measure(client, stats[:2], None, "stats x2")
                stalls.report("2 stats requests after a refresh")
            prof = cProfile.Profile() if args.profile else None
            cpu0 = time.process_time()
            if prof:
                prof.enable()
            for _ in range(args.figures):
                await source.figures()
            if prof:
                prof.disable()
                prof.dump_stats(args.profile / "figures.pstats")
            cpu = (time.process_time() - cpu0) / max(1, args.figures)
            print(f"figures() computed {args.figures} times: cpu {cpu * 1e3:8.2f} ms each")
        finally:
            await client.close()
            r = aioredis.Redis.from_url(redis_url)
            async for key in r.scan_iter(match=f"{bench.prefix}*", count=1000):
                await r.unlink(key)
            await r.aclose()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
