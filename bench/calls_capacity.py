"""Calls: how many simultaneous calls one machine carries through the carrier emulator.

    .venv/bin/python bench/calls_capacity.py --json var/bench/calls.json   # `make bench-calls`

What runs (everything on loopback, the run stops by itself within `--max-minutes`):
- a redis-server of its own (free port, AOF everysec), never the shared one;
- the service as one subprocess (`hotline serve`, speech off, a copy of config/ with every
  calendar open, the queues' announcement intervals as configured, and `--agents` extra
  emulated agents with every skill);
- the carrier emulator in this process at speed-up 1 (real time: latency is the point),
  one `AgentPhone` per agent (answers after 2 s, talks for an hour: longer than the run).

Each step holds N simultaneous calls in a mix close to the busiest hour's (docs/SCALING.md
section 5: ~940 talking, ~250 in menus, a few waiting):
- MENU_SHARE in the keypad menus (self-service: language, balance, account, PIN, ...);
  a call that finishes is replaced at once, so the menus see a steady arrival stream;
- WAIT_SHARE waiting in the queue with no agent free: the hold loop (`waitUrl`, the
  position/estimate announcement every `announce_every_s`, the callback offer);
- the rest talking to agents (one more agent logged in per talking call).
New calls of a step arrive at `--arrival-rate` calls/s (3.6x the busiest hour's average),
then the step holds for `--hold` seconds.

Measured per step, over the whole step (arrivals and hold): every webhook's latency as the
emulator sees it (from sending the signed request to the end of the body: this wraps
`emulator.webhooks.Webhooks.request` in this process only; status callbacks included),
the emulator's debugger entries (`emu.errors`, `emu.internal_errors`), the event-loop lag
of this process (the emulator's own delay, which the latency includes), the service's RSS
and Redis `used_memory`. A step passes with no webhook over 200 ms and no error; the
figure is the largest step that passed. Memory per call = (RSS or used_memory at the step
- the same before any call) / N.

Baseline for the ratio: the simultaneous calls the busiest hour needs, from Little's law
(L = arrival rate x time in system): 20,000 calls/h x (demo AHT + menu time + wait).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emulator import AgentPhone, CallerScript, CarrierEmulator  # noqa: E402
from emulator.webhooks import Webhooks  # noqa: E402
from tests.reliability.redis_proc import RedisProc, free_port  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from soak import login_agents, rss_of, start_service, wait_ready  # noqa: E402

ACCOUNT_SID = "AC" + "7" * 32
AUTH_TOKEN = "calls-capacity-token-0123456789"
PREFIX = "capacity:"
LIMIT_MS = 200.0
MENU_SHARE = 0.25
WAIT_SHARE = 0.15
RING_S = 2.0
TALK_S = 3600.0  # longer than the run: a talking call stays talking
SELF_SERVICE = (("2", "1", "12345678", "4321", "9"), ("2", "3", "9"))
TO_QUEUE = ("2", "0")
# the busiest hour (docs/SCALING.md): 20,000 calls/h, demo AHT 170 s, ~45 s in menus,
# ASA ~0.1 s at 1,000 agents (Erlang C, SCALING.md section 5)
BUSY_HOUR_CALLS = 20_000
DEMO_AHT_S = 170.0
MENU_TIME_S = 45.0
ASA_S = 0.1


def required_simultaneous() -> dict[str, float]:
    """Little's law: L = lambda x W, per stage and in total."""
    rate = BUSY_HOUR_CALLS / 3600.0
    return {
        "arrival_per_s": round(rate, 3),
        "menus": round(rate * MENU_TIME_S, 1),
        "waiting": round(rate * ASA_S, 1),
        "talking": round(rate * DEMO_AHT_S, 1),
        "total": round(rate * (MENU_TIME_S + ASA_S + DEMO_AHT_S), 1),
    }


@dataclass
class Timing:
    t: float
    path: str
    ms: float
    status: int  # 0: no answer (connection error, timeout, cancelled)
    exc: str = ""


@dataclass
class Recorder:
    """Every webhook the emulator makes, timed around `Webhooks.request`."""

    timings: list[Timing] = field(default_factory=list)

    def install(self) -> None:
        original = Webhooks.request
        timings = self.timings

        async def timed(
            self: Webhooks, url: str, method: str, params: Mapping[str, str]
        ) -> tuple[int, str, bytes]:
            start = time.monotonic()
            status = 0
            exc = ""
            try:
                result = await original(self, url, method, params)
                status = result[0]
                return result
            except BaseException as error:
                exc = type(error).__name__
                raise
            finally:
                path = url.split("//", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
                path = "/" + "/".join(path.split("/")[:2])
                timings.append(Timing(start, path, (time.monotonic() - start) * 1000, status, exc))

        Webhooks.request = timed  # type: ignore[method-assign]


@dataclass
class LoopLag:
    samples_ms: list[float] = field(default_factory=list)

    async def run(self, every_s: float = 0.05) -> None:
        while True:
            start = time.monotonic()
            await asyncio.sleep(every_s)
            self.samples_ms.append((time.monotonic() - start - every_s) * 1000)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)]


def capacity_config(work: Path, agents: int) -> Path:
    """config/ copied, calendars always open, `agents` bench agents with every skill."""
    target = work / "config"
    shutil.copytree(ROOT / "config", target)
    calendars = yaml.safe_load((target / "calendars.yaml").read_text(encoding="utf-8"))
    for cal in calendars["calendars"].values():
        cal["hours"] = {"daily": "00:00-24:00"}
        cal["holidays"] = []
    (target / "calendars.yaml").write_text(yaml.safe_dump(calendars), encoding="utf-8")
    queues = yaml.safe_load((target / "queues.yaml").read_text(encoding="utf-8"))
    skills = sorted({s for q in queues["queues"].values() for s in q.get("skills", {})})
    for i in range(agents):
        queues["agents"][f"c{i:04d}"] = {
            "name": f"Capacity Agent {i}",
            "phone": f"+1555{3000000 + i:07d}",
            "skills": {s: 1 for s in skills},
            "token": f"capacity-agent-token-{i:04d}",
        }
    (target / "queues.yaml").write_text(yaml.safe_dump(queues), encoding="utf-8")
    return target


@dataclass
class Population:
    emu: CarrierEmulator
    url: str
    menus_target: int = 0
    menus: set[Any] = field(default_factory=set)
    queued: list[Any] = field(default_factory=list)
    placed: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(8))

    async def place(self, presses: tuple[str, ...]) -> Any:
        self.placed += 1
        return await self.emu.place_inbound_call(
            voice_url=f"{self.url}/voice",
            fallback_url=f"{self.url}/fallback",
            status_callback=f"{self.url}/status",
            from_=f"+86138{self.rng.randrange(10**8):08d}",
            to="+8640012345",
            script=CallerScript(presses=presses, patience=None),
        )

    async def keep_menus(self, rate: float) -> None:
        """Replace finished menu calls, at most `rate` new calls a second."""
        while True:
            self.menus = {c for c in self.menus if not c.finished}
            if len(self.menus) < self.menus_target:
                self.menus.add(await self.place(self.rng.choice(SELF_SERVICE)))
                await asyncio.sleep(1 / rate)
            else:
                await asyncio.sleep(0.05)

    def waiting(self) -> int:
        """Calls in an <Enqueue> queue (the hold loop) right now."""
        return sum(len(q.members) for q in self.emu.queues.values())

    def talking(self) -> int:
        """Calls bridged to an agent right now (agent phones with a call up)."""
        return sum(p.active for p in self.emu.agents_by_number.values())


async def paced(count: int, rate: float, make: Callable[[], Awaitable[None]]) -> None:
    for _ in range(count):
        await make()
        await asyncio.sleep(1 / rate)


async def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    steps: list[int] = args.steps
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    max_agents = math.ceil(max(steps) * (1 - MENU_SHARE - WAIT_SHARE))
    deadline = time.monotonic() + args.max_minutes * 60
    recorder = Recorder()
    recorder.install()
    server = RedisProc(work / "redis", fsync="everysec")
    server.start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    emu = CarrierEmulator(ACCOUNT_SID, AUTH_TOKEN, speedup=1.0)
    emu_runner = await emu.serve("127.0.0.1", 0)
    config_dir = capacity_config(work, max_agents)
    env = {
        **os.environ,
        "REDIS_URL": server.url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE": str(emu.public_url),
        "PUBLIC_URL": url,
        "PORT": str(port),
        "HOTLINE_CONFIG": str(config_dir),
        "HOTLINE_DATA": str(work / "var"),
        "HOTLINE_KEY_PREFIX": PREFIX,
        "HOTLINE_SPEECH": "off",
    }
    log_path = work / "service.log"
    proc = await asyncio.to_thread(start_service, port, env, log_path)
    redis = aioredis.Redis.from_url(server.url, decode_responses=True)
    lag = LoopLag()
    pop = Population(emu, url)
    tasks: list[asyncio.Task[None]] = []
    results: list[dict[str, Any]] = []
    stopped = ""
    try:
        await wait_ready(url)
        queues_cfg = yaml.safe_load((config_dir / "queues.yaml").read_text(encoding="utf-8"))
        bench_agents = {k: v for k, v in queues_cfg["agents"].items() if k.startswith("c")}
        for agent in bench_agents.values():
            emu.register_agent(
                AgentPhone(number=agent["phone"], answer_after=RING_S, handle_time=TALK_S)
            )
        order = sorted(bench_agents)
        logged_in = 0
        await asyncio.sleep(2)
        base_rss = rss_of(proc.pid)
        base_redis = int((await redis.info("memory"))["used_memory"])
        tasks.append(asyncio.create_task(lag.run()))
        tasks.append(asyncio.create_task(pop.keep_menus(args.arrival_rate)))
        for n in steps:
            if time.monotonic() + args.hold + args.settle + 30 > deadline:
                stopped = f"time limit ({args.max_minutes} min) before step {n}"
                break
            menus = round(n * MENU_SHARE)
            waiting = round(n * WAIT_SHARE)
            talking = n - menus - waiting
            t_start = time.monotonic()
            mark_t, mark_err, mark_int = (
                len(recorder.timings),
                len(emu.errors),
                len(emu.internal_errors),
            )
            mark_lag = len(lag.samples_ms)
            print(f"step {n}: {menus} in menus, {waiting} waiting, {talking} talking", flush=True)
            # agents first (each takes one queued call), then the queued callers
            new_agents = {a: bench_agents[a] for a in order[logged_in:talking]}
            await login_agents(url, new_agents)
            logged_in = talking
            pop.menus_target = menus
            live_queued = sum(1 for c in pop.queued if not c.finished)
            to_place = max(0, talking + waiting - live_queued)

            async def one() -> None:
                pop.queued.append(await pop.place(TO_QUEUE))

            await paced(to_place, args.arrival_rate, one)
            # queued callers go through the menus first: wait for the mix to form
            for _ in range(int(args.settle / 0.5)):
                if pop.talking() >= 0.95 * talking and pop.waiting() >= 0.9 * waiting:
                    break
                await asyncio.sleep(0.5)
            ramp_s = time.monotonic() - t_start
            await asyncio.sleep(args.hold)
            # sample at the end of the hold, with the step's population in place
            rss = rss_of(proc.pid)
            used = int((await redis.info("memory"))["used_memory"])
            live_menus = sum(1 for c in pop.menus if not c.finished)
            live_talking = pop.talking()
            live_waiting = pop.waiting()
            live_q = sum(1 for c in pop.queued if not c.finished)
            # a fetch cancelled by the call's own interrupt (a REST redirect to the agent
            # while the queue-join document is in flight, a hang-up) has no answer to time
            everything = recorder.timings[mark_t:]
            window = [x for x in everything if x.exc != "CancelledError"]
            cancelled = len(everything) - len(window)
            lat = [x.ms for x in window]
            by_path: dict[str, list[float]] = {}
            for x in window:
                by_path.setdefault(x.path, []).append(x.ms)
            errors = [e.to_json() for e in emu.errors[mark_err:]]
            hard = [e for e in errors if e.get("level") == "error"]
            internal = emu.internal_errors[mark_int:]
            failures = [f"{x.path} {x.status} {x.exc}" for x in window if not 200 <= x.status < 400]
            failed = len(failures)
            over = sum(1 for v in lat if v > LIMIT_MS)
            lags = lag.samples_ms[mark_lag:]
            step = {
                "calls": n,
                "target_mix": {"menus": menus, "waiting": waiting, "talking": talking},
                "live_at_end": {
                    "menus": live_menus + live_q - live_talking - live_waiting,
                    "waiting": live_waiting,
                    "talking": live_talking,
                    "total": live_menus + live_q,
                },
                "arrive_and_settle_s": round(ramp_s, 1),
                "hold_s": args.hold,
                "webhooks": len(lat),
                "webhooks_per_s": round(len(lat) / (time.monotonic() - t_start), 1),
                "p50_ms": round(percentile(lat, 50), 2),
                "p90_ms": round(percentile(lat, 90), 2),
                "p99_ms": round(percentile(lat, 99), 2),
                "max_ms": round(max(lat, default=0.0), 2),
                "over_200ms": over,
                "http_failures": failed,
                "fetches_cancelled_by_interrupts": cancelled,
                "by_path": {
                    p: {
                        "count": len(v),
                        "p50_ms": round(percentile(v, 50), 2),
                        "p99_ms": round(percentile(v, 99), 2),
                        "max_ms": round(max(v), 2),
                    }
                    for p, v in sorted(by_path.items())
                },
                "emulator_errors": len(hard),
                "emulator_warnings": len(errors) - len(hard),
                "emulator_internal_errors": len(internal),
                "error_samples": (hard + [{"internal": i} for i in internal])[:5],
                "http_failure_samples": sorted(set(failures))[:10],
                "loop_lag_p99_ms": round(percentile(lags, 99), 2),
                "loop_lag_max_ms": round(max(lags, default=0.0), 2),
                "service_rss_mb": round(rss / 2**20, 1),
                "redis_used_mb": round(used / 2**20, 2),
                "rss_kb_per_call": round((rss - base_rss) / n / 1024, 2),
                "redis_kb_per_call": round((used - base_redis) / n / 1024, 2),
                "calls_placed_so_far": pop.placed,
                "load_avg": list(os.getloadavg()),
            }
            step["ok"] = over == 0 and failed == 0 and not hard and not internal
            results.append(step)
            print(
                f"  {'PASS' if step['ok'] else 'FAIL'} live {step['live_at_end']} "
                f"webhooks {len(lat)} p50 {step['p50_ms']} p99 {step['p99_ms']} "
                f"max {step['max_ms']} ms, >200ms {over}, errors {len(hard)}+{len(internal)}"
                f"+{failed} http, lag p99 {step['loop_lag_p99_ms']} ms, "
                f"RSS {step['service_rss_mb']} MB, redis {step['redis_used_mb']} MB",
                flush=True,
            )
            if proc.poll() is not None:
                stopped = f"the service exited with {proc.returncode}"
                break
            if not step["ok"]:
                stopped = f"step {n} failed"
                break
        else:
            stopped = stopped or "all steps passed"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await emu.close()  # hang up while the service still takes the status callbacks
        await emu_runner.cleanup()
        await redis.aclose()
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, 15)
        except subprocess.TimeoutExpired:
            proc.kill()
        server.stop()
    passed = [s for s in results if s["ok"]]
    best = passed[-1] if passed else None
    required = required_simultaneous()
    capacity = best["calls"] if best else 0
    return {
        "run_started": started,
        "run_finished": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
        },
        "service": "hotline serve, one process, speech off",
        "limit_ms": LIMIT_MS,
        "mix": {"menus": MENU_SHARE, "waiting": WAIT_SHARE, "talking": 1 - MENU_SHARE - WAIT_SHARE},
        "arrival_rate": args.arrival_rate,
        "base_rss_mb": round(base_rss / 2**20, 1) if results else None,
        "base_redis_mb": round(base_redis / 2**20, 2) if results else None,
        "steps": results,
        "stopped": stopped,
        "capacity_calls": capacity,
        "required": required,
        "ratio_to_required": round(capacity / required["total"], 3),
        "at_capacity": best,
    }


def markdown(report: dict[str, Any]) -> str:
    """docs/BENCHMARKS_CALLS.md: the headline (as in docs/BENCHMARKS.md) and every step."""
    from report import calls_section

    lines = [
        "# Benchmarks: simultaneous calls",
        "",
        "Written by `make bench-calls` (bench/calls_capacity.py); do not edit by hand. "
        "`make bench` copies the headline into docs/BENCHMARKS.md.",
        "",
        *calls_section(report),
        "",
        f"Before any call: service RSS {report['base_rss_mb']} MB, Redis used_memory "
        f"{report['base_redis_mb']} MB (configuration, agents logged in). New calls arrive at "
        f"{report['arrival_rate']:g} calls/s (the busiest hour's average is "
        f"{report['required']['arrival_per_s']}/s); menu calls that end are replaced at once. "
        "Latency: from sending the signed request to the end of the answer, as the emulator "
        "sees it (status callbacks included); it includes the emulator's own event-loop "
        "delay (the lag column), since the emulator shares the machine and the cores.",
        "",
        "| calls | live at end: menus / waiting / talking | arrive + settle s | webhooks "
        "| per s | p50 ms | p90 ms | p99 ms | max ms | > 200 ms | errors | emulator lag "
        "p99 / max ms | RSS MB | KB/call | Redis MB | KB/call | load avg | verdict |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for st in report["steps"]:
        live = st["live_at_end"]
        errors = st["emulator_errors"] + st["emulator_internal_errors"] + st["http_failures"]
        lines.append(
            f"| {st['calls']} | {live['menus']} / {live['waiting']} / {live['talking']} | "
            f"{st['arrive_and_settle_s']} | {st['webhooks']} | {st['webhooks_per_s']} | "
            f"{st['p50_ms']} | {st['p90_ms']} | {st['p99_ms']} | {st['max_ms']} | "
            f"{st['over_200ms']} | {errors} | {st['loop_lag_p99_ms']} / "
            f"{st['loop_lag_max_ms']} | {st['service_rss_mb']} | {st['rss_kb_per_call']} | "
            f"{st['redis_used_mb']} | {st['redis_kb_per_call']} | "
            f"{st['load_avg'][0]:.2f} | {'pass' if st['ok'] else '**fail**'} |"
        )
    last = report["steps"][-1] if report["steps"] else None
    if last is not None:
        lines += [
            "",
            f"By endpoint at the last step ({last['calls']} calls):",
            "",
            "| path | count | p50 ms | p99 ms | max ms |",
            "|---|---:|---:|---:|---:|",
        ]
        for path, r in last["by_path"].items():
            lines.append(
                f"| `{path}` | {r['count']} | {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} |"
            )
        if last["error_samples"] or last["http_failure_samples"]:
            lines += ["", "Errors at the last step (first few):", ""]
            lines += [f"- `{json.dumps(e, ensure_ascii=False)}`" for e in last["error_samples"]]
            lines += [f"- HTTP: `{f}`" for f in last["http_failure_samples"]]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description="simultaneous calls one machine carries")
    parser.add_argument(
        "--steps",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[50, 100, 200, 400, 800, 1200, 1600, 2400],
    )
    parser.add_argument("--hold", type=float, default=25.0, help="seconds per step")
    parser.add_argument(
        "--settle", type=float, default=60.0, help="max seconds for the mix to form per step"
    )
    parser.add_argument("--arrival-rate", type=float, default=20.0, help="new calls/s")
    parser.add_argument("--max-minutes", type=float, default=15.0, help="whole-run bound")
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument("--markdown", type=Path, help="write docs/BENCHMARKS_CALLS.md here")
    parser.add_argument("--from-json", type=Path, help="only render --markdown from this")
    args = parser.parse_args()
    if args.from_json:
        report = json.loads(args.from_json.read_text(encoding="utf-8"))
        if args.markdown:
            args.markdown.write_text(markdown(report), encoding="utf-8")
        return 0
    work = Path(tempfile.mkdtemp(prefix="hotline-calls-"))
    try:
        report = asyncio.run(measure(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text, encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(markdown(report), encoding="utf-8")
    print(
        f"capacity {report['capacity_calls']} simultaneous calls; the busiest hour needs "
        f"{report['required']['total']:.0f}: ratio {report['ratio_to_required']} "
        f"({report['stopped']})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
