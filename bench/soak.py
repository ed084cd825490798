"""Soak: the real service under twice its nominal load for a long time, memory sampled.

    .venv/bin/python bench/soak.py --minutes 30          # `make soak`
    .venv/bin/python bench/soak.py --minutes 3 --json out.json

What runs: a redis-server of its own (AOF everysec, free port), the service as a
subprocess (`hotline serve`, speech off, a copy of config/ with every calendar open,
short wrap-up and a capacity of `--max-waiting` per queue), and the carrier emulator in
this process with eight agent phones, every agent logged in through the agent API.

Load: "nominal" is the arrival rate at which the agents are 80 % busy, from the talk,
ring and wrap-up times below; the soak offers `--load` (2.0) times that to the queues,
and as many self-service calls again (balance of a demo account, opening hours). Callers
abandon after `patience`; a queue at capacity refuses callers with the busy message.

Checks (exit status 1 when one fails):
- zero lost calls: every call the emulator placed ended; the service counted each
  final status exactly once (the sum of its outcome counters equals the calls placed);
  no call is left waiting or reserved in Redis after the drain; offered = answered +
  abandoned in the queue statistics (each caller that entered a queue left it once);
- memory flat: after the warm-up (`--warmup-minutes`, by default the first 20 % of the
  run: 6 of 30 minutes), the service process's RSS samples stay within 10 % of each other
  (max / min <= 1.10). The warm-up is left out because the first minutes fill what is
  bounded by design (sessions until their TTL, the statistics' rings and caches). The
  verdict line prints RSS at the start, after the warm-up and at the end, the ratio,
  and the growth per minute over the last half of the run;
- Redis `used_memory` is reported with the retained keys (call-ended marks are kept two
  days, outcomes 400 days, sessions for HOTLINE_SESSION_TTL): growth per call is printed;
  it is retention, not a leak, when keys grow in proportion to the calls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from config.keys import Keys  # noqa: E402
from emulator import AgentPhone, CallerScript, CarrierEmulator  # noqa: E402
from tests.reliability.redis_proc import RedisProc, free_port  # noqa: E402

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "soak-auth-token-0123456789"
PREFIX = "soak:"
SPEEDUP = 20.0
TALK_S = 60.0  # emulated
RING_S = 2.0  # emulated
WRAP_S = 2.0  # real (wrap-up is service time)
PATIENCE_S = 90.0  # emulated
OCCUPANCY = 0.8
SELF_SERVICE = (("2", "1", "12345678", "4321", "9"), ("2", "3", "9"))
TO_QUEUE = (("2", "0"), ("2", "2"), ("2", "4"))


@dataclass
class Sample:
    t: float
    service_rss: int
    redis_used: int
    redis_keys: int
    calls_placed: int


@dataclass
class Soak:
    args: argparse.Namespace
    work: Path
    samples: list[Sample] = field(default_factory=list)
    placed: int = 0
    queued_placed: int = 0
    finished: int = 0
    stuck: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def soak_config(work: Path, max_waiting: int) -> Path:
    """config/ copied, calendars always open, wrap-up short, a capacity per queue."""
    target = work / "config"
    shutil.copytree(ROOT / "config", target)
    calendars = yaml.safe_load((target / "calendars.yaml").read_text(encoding="utf-8"))
    for cal in calendars["calendars"].values():
        cal["hours"] = {"daily": "00:00-24:00"}
        cal["holidays"] = []
    (target / "calendars.yaml").write_text(yaml.safe_dump(calendars), encoding="utf-8")
    queues = yaml.safe_load((target / "queues.yaml").read_text(encoding="utf-8"))
    for q in queues["queues"].values():
        q["wrap_up_s"] = WRAP_S
        q["max_waiting"] = max_waiting
        q["calendar"] = "always"
    (target / "queues.yaml").write_text(yaml.safe_dump(queues), encoding="utf-8")
    return target


def agents_of(config_dir: Path) -> dict[str, dict[str, Any]]:
    queues = yaml.safe_load((config_dir / "queues.yaml").read_text(encoding="utf-8"))
    return dict(queues["agents"])


async def wait_ready(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url + "/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the service did not become ready")


async def login_agents(url: str, agents: dict[str, dict[str, Any]]) -> None:
    async with aiohttp.ClientSession() as http:
        for agent_id, agent in agents.items():
            headers = {"Authorization": f"Bearer {agent['token']}"}
            async with http.post(
                f"{url}/api/agents/{agent_id}/login", json={"ready": True}, headers=headers
            ) as response:
                if response.status >= 300:
                    text = await response.text()
                    raise RuntimeError(f"login {agent_id}: {response.status} {text}")


def rss_of(pid: int) -> int:
    """Resident set size of a process, in bytes (Linux /proc)."""
    with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def sample(soak: Soak, service_pid: int, redis: aioredis.Redis, t0: float) -> None:
    info = await redis.info("memory")
    soak.samples.append(
        Sample(
            t=round(time.monotonic() - t0, 1),
            service_rss=rss_of(service_pid),
            redis_used=int(info["used_memory"]),
            redis_keys=int(await redis.dbsize()),
            calls_placed=soak.placed,
        )
    )


def start_service(
    port: int, env: dict[str, str], log_path: Path, traced: bool = False
) -> subprocess.Popen[bytes]:
    command = [str(ROOT / ".venv/bin/hotline")]
    if traced:
        command = [str(ROOT / ".venv/bin/python"), str(ROOT / "bench/traced_serve.py")]
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            [*command, "serve", "--port", str(port)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


async def run(soak: Soak) -> dict[str, Any]:
    args = soak.args
    server = RedisProc(soak.work / "redis", fsync="everysec")
    server.start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    emu = CarrierEmulator(ACCOUNT_SID, AUTH_TOKEN, speedup=SPEEDUP)
    emu_runner = await emu.serve("127.0.0.1", 0)
    config_dir = soak_config(soak.work, args.max_waiting)
    env: dict[str, str] = {
        **os.environ,
        "REDIS_URL": server.url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE": str(emu.public_url),
        "PUBLIC_URL": url,
        "PORT": str(port),
        "HOTLINE_CONFIG": str(config_dir),
        "HOTLINE_DATA": str(soak.work / "var"),
        "HOTLINE_KEY_PREFIX": PREFIX,
        "HOTLINE_SPEECH": "off",
        "HOTLINE_SESSION_TTL": str(args.session_ttl),
    }
    if args.tracemalloc:
        env["TRACEMALLOC_DIR"] = str(args.tracemalloc.resolve())
        env["TRACEMALLOC_EVERY_S"] = str(args.tracemalloc_every)
        env["TRACEMALLOC_FRAMES"] = str(args.tracemalloc_frames)
    log_path = soak.work / "service.log"
    proc = await asyncio.to_thread(start_service, port, env, log_path, bool(args.tracemalloc))
    redis = aioredis.Redis.from_url(server.url, decode_responses=True)
    try:
        await wait_ready(url)
        agents = agents_of(config_dir)
        for agent in agents.values():
            emu.register_agent(
                AgentPhone(
                    number=agent.get("phone"),
                    client=agent.get("client"),
                    answer_after=RING_S,
                    handle_time=lambda: random.expovariate(1 / TALK_S),
                    max_calls=1,
                )
            )
        await login_agents(url, agents)
        per_call_real_s = (TALK_S + RING_S) / SPEEDUP + WRAP_S + 0.5
        nominal = OCCUPANCY * len(agents) / per_call_real_s  # queue arrivals per real second
        queue_rate = nominal * args.load
        rate = queue_rate * 2  # as many self-service calls again
        print(
            f"nominal {nominal:.2f} queue calls/s; offering {queue_rate:.2f} to the queues "
            f"+ {queue_rate:.2f} self-service = {rate:.2f} calls/s for {args.minutes} min",
            flush=True,
        )
        t0 = time.monotonic()
        end = t0 + args.minutes * 60
        calls: list[Any] = []
        next_sample = t0
        n = 0
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise RuntimeError(f"the service exited with {proc.returncode}")
            n += 1
            queued = n % 2 == 0
            presses = random.choice(TO_QUEUE if queued else SELF_SERVICE)
            call = await emu.place_inbound_call(
                voice_url=f"{url}/voice",
                fallback_url=f"{url}/fallback",
                status_callback=f"{url}/status",
                from_=f"+86138{random.randrange(10**8):08d}",
                to="+8640012345",
                script=CallerScript(presses=presses, patience=random.expovariate(1 / PATIENCE_S)),
            )
            calls.append(call)
            soak.placed += 1
            soak.queued_placed += int(queued)
            if time.monotonic() >= next_sample:
                await sample(soak, proc.pid, redis, t0)
                next_sample += args.sample_every
            await asyncio.sleep(random.expovariate(rate))
        # drain: every call ends (patience bounds the wait), then the last callbacks land
        for call in calls:
            try:
                transcript = await call.wait_finished(120)
                soak.finished += 1
                reason = transcript.outcome.hangup_reason or "?"
                soak.reasons[reason] = soak.reasons.get(reason, 0) + 1
            except TimeoutError:
                soak.stuck += 1
        await asyncio.sleep(3)
        await sample(soak, proc.pid, redis, t0)
        return await verdict(soak, redis, log_path)
    finally:
        await redis.aclose()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        await emu.close()
        await emu_runner.cleanup()
        server.stop()


FLAT_LIMIT = 1.10  # the "memory flat": within 10 % after the warm-up


def memory_verdict(samples: list[Sample], warm: list[Sample]) -> dict[str, Any]:
    """RSS at the start, after the warm-up and at the end; max / min after the warm-up;
    MB per minute over the last half (a bounded holder filling up slows to zero)."""
    rss = [s.service_rss for s in warm]
    half = [s for s in samples if s.t >= samples[-1].t / 2] or samples
    minutes = max(1e-9, (half[-1].t - half[0].t) / 60)
    mb = 2**20
    return {
        "start_mb": round(samples[0].service_rss / mb, 1),
        "after_warmup_mb": round(warm[0].service_rss / mb, 1),
        "end_mb": round(samples[-1].service_rss / mb, 1),
        "min_mb": round(min(rss) / mb, 1),
        "max_mb": round(max(rss) / mb, 1),
        "max_over_min": round(max(rss) / min(rss), 3),
        "last_half_mb_per_min": round(
            (half[-1].service_rss - half[0].service_rss) / mb / minutes, 3
        ),
    }


async def verdict(soak: Soak, redis: aioredis.Redis, log_path: Path) -> dict[str, Any]:
    keys = Keys(prefix=PREFIX)
    outcomes: dict[str, int] = {}
    async for key in redis.scan_iter(match=keys.call_outcomes("*")):
        for name, count in (await redis.hgetall(key)).items():
            outcomes[str(name)] = outcomes.get(str(name), 0) + int(count)
    left = await redis.hlen(keys.route_calls("main"))
    stats: dict[str, int] = {}
    async for key in redis.scan_iter(match=f"{keys.route_tag('main')}:stats:*"):
        if ":stats:_centre:" in key:
            continue
        for name in ("offered", "answered", "abandoned", "refused_full"):
            stats[name] = stats.get(name, 0) + int(await redis.hget(key, name) or 0)
    errors = 0
    tracebacks = 0
    text = await asyncio.to_thread(log_path.read_text, encoding="utf-8", errors="replace")
    for line in text.splitlines():
        if '"level": "error"' in line:
            errors += 1
        if "Traceback" in line:
            tracebacks += 1
    warmup_s = soak.args.warmup_minutes * 60
    warm = [s for s in soak.samples if s.t >= warmup_s] or soak.samples
    used = [s.redis_used for s in warm]
    memory = memory_verdict(soak.samples, warm)
    rss_ratio = memory["max_over_min"]
    used_ratio = max(used) / min(used)
    calls_in_window = max(1, warm[-1].calls_placed - warm[0].calls_placed)
    bytes_per_call = (warm[-1].redis_used - warm[0].redis_used) / calls_in_window
    counted = sum(outcomes.values())
    checks = {
        "every call ended": soak.stuck == 0 and soak.finished == soak.placed,
        "every final status counted once": counted == soak.placed,
        "no call left in a queue": left == 0,
        "offered = answered + abandoned": stats.get("offered", 0)
        == stats.get("answered", 0) + stats.get("abandoned", 0),
        "service RSS flat within 10 % after warm-up": rss_ratio <= FLAT_LIMIT,
    }
    report = {
        "minutes": soak.args.minutes,
        "load": soak.args.load,
        "calls_placed": soak.placed,
        "calls_to_queues": soak.queued_placed,
        "ended_how": soak.reasons,
        "outcomes_counted": outcomes,
        "queue_stats": stats,
        "left_in_queue": left,
        "service_log_errors": errors,
        "service_log_tracebacks": tracebacks,
        "warmup_minutes": soak.args.warmup_minutes,
        "service_rss": memory,
        "service_rss_mb_by_minute": {
            f"{s.t / 60:.1f}": round(s.service_rss / 2**20, 1) for s in soak.samples
        },
        "redis_used_mb_start_end": [
            round(soak.samples[0].redis_used / 2**20, 2),
            round(warm[0].redis_used / 2**20, 2),
            round(soak.samples[-1].redis_used / 2**20, 2),
        ],
        "redis_used_mb": [round(u / 2**20, 2) for u in used],
        "redis_used_max_over_min": round(used_ratio, 3),
        "redis_bytes_per_call": round(bytes_per_call),
        "redis_keys": [s.redis_keys for s in warm],
        "checks": checks,
        "ok": all(checks.values()),
    }
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description="soak the service at a multiple of its load")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--load", type=float, default=2.0, help="multiple of nominal load")
    parser.add_argument("--max-waiting", type=int, default=10, help="capacity per queue")
    parser.add_argument("--session-ttl", type=int, default=300, help="HOTLINE_SESSION_TTL")
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds")
    parser.add_argument("--json", type=Path, help="write the report here too")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    parser.add_argument(
        "--tracemalloc",
        type=Path,
        help="trace the service's allocations; snapshots into this folder (slower service)",
    )
    parser.add_argument("--tracemalloc-every", type=float, default=60.0, help="seconds")
    parser.add_argument(
        "--tracemalloc-frames", type=int, default=8, help="0: memory figures only, no tracing"
    )
    parser.add_argument(
        "--warmup-minutes",
        type=float,
        default=None,
        help="left out of the memory verdict (default: the first 20 %% of the run)",
    )
    args = parser.parse_args()
    if args.warmup_minutes is None:
        args.warmup_minutes = round(args.minutes * 0.2, 2)
    work = Path(tempfile.mkdtemp(prefix="hotline-soak-"))
    soak = Soak(args=args, work=work)
    try:
        report = asyncio.run(run(soak))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work dir kept: {work}", file=sys.stderr)
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        args.json.write_text(text, encoding="utf-8")
    m = report["service_rss"]
    flat = m["max_over_min"] <= FLAT_LIMIT
    print(
        f"memory: service RSS {m['start_mb']} MB at the start, {m['after_warmup_mb']} MB after "
        f"the {args.warmup_minutes:g}-minute warm-up, {m['end_mb']} MB at the end; after the "
        f"warm-up max/min {m['max_over_min']} ({m['min_mb']}..{m['max_mb']} MB), "
        f"{m['last_half_mb_per_min']:+} MB/min over the last half: "
        + ("FLAT (within 10 %)" if flat else "NOT FLAT (over 10 %)")
    )
    for name, ok in report["checks"].items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
