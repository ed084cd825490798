"""`hotline simulate`: the service under a seeded load, through the carrier emulator.

One run: draw the workload (:mod:`queueing.workload`), start the emulator, start W service
processes sharing one Redis (W=1 runs in this process unless told otherwise; W>1 are
spawned processes on one SO_REUSEPORT port, as `hotline serve --workers` runs them), log
N emulated agents in ready, place every call at its arrival time, wait until each call is
over, then compare call by call with the ideal dispatcher replaying the very same sample
path (:mod:`queueing.ideal`), with Erlang C, and with the service's own statistics.

The simulation menu (built here, validated by the project's parsers): one keypad menu,
"1" for the general queue, "2" for the VIP queue; the caller presses at once and then
waits. The wait is counted from the end of the menu (the call is placed that long before
its arrival time) to the agent picking up. Every sample of one call (ring time, handle
time, patience) is looked up by the call's workload id, which the emulator's samplers
read from a context variable set when the call is placed (asyncio copies it into the
call's tasks), so the live run and the ideal replay see the same numbers for the same
call whichever agent takes it.

Time scaling: the emulator divides every emulated duration by the speed-up K; the
service's own real-time durations are divided by K in a scaled copy of the configuration
(:func:`queueing.simulation.scale_queues`). Real latency (webhooks, Redis, REST) is not
scaled: each real millisecond costs K emulated milliseconds, which the report shows as
extra wait against the ideal. See docs/SIMULATION.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import dataclasses
import json
import logging
import math
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any, TextIO

import redis.asyncio as aioredis
from aiohttp import web

from config.calendar import load_calendars
from config.errors import ConfigIssue
from config.keys import Keys
from config.loader import HotlineConfig, load_config
from config.menus import parse_flow
from config.queues import load_queues_text
from config.redis_conn import connect
from config.settings import Settings
from config.surveys import SurveyMode
from config.yamlload import load_yaml_text
from emulator import AgentPhone, CallerScript, CarrierEmulator
from emulator.calls import Call as EmuCall
from emulator.interpreter import say_seconds
from queueing.ideal import run_ideal
from queueing.simulation import (
    GENERAL_PRIORITY,
    VIP_PRIORITY,
    AgentSpan,
    LiveCall,
    ReportInputs,
    ServiceCall,
    SimulationParams,
    build_report,
    format_report,
    progress_line,
    retime,
    scale_queues,
    sl_over_time,
)
from queueing.stats import QueueStats
from queueing.store import QueueStore
from queueing.workload import Call, Workload, generate, parse_distribution, parse_patience

log = logging.getLogger("hotline.simulate")

ACCOUNT_SID = "AC" + "5" * 32
HOTLINE = "+8640000000"
MENU_PROMPT = "Hi."
TRANSFER_PROMPT = "One moment."
PRESS_S = CallerScript().press_seconds
# emulated seconds from the call being answered to the menu choice reaching the service
MENU_S = say_seconds(MENU_PROMPT) + PRESS_S
NEVER_S = 1e9  # "never hangs up", as a finite emulated delay
DIAL_TIMEOUT_FLOOR_S = 5  # the service's <Dial timeout> floor (ivr.queue_twiml.dial_agent)
DEFAULT_SPEEDUP = 60.0
AGREEMENT_LATENCY_S = 0.25  # real seconds (x K): a wait the service measured may differ by this
DRAIN_LIMIT_S = 2 * 3600.0  # emulated: calls still running this long after the last arrival

CALL_ID: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "hotline_simulate_call", default=None
)

_SPAWN = multiprocessing.get_context("spawn")


# ------------------------------------------------------------------ configuration

CALENDARS_YAML = """\
calendars:
  always:
    timezone: UTC
    hours:
      daily: "00:00-24:00"
"""

_MESSAGES = {
    "invalid": "Sorry, that is not a valid choice.",
    "no_input": "Sorry, we did not receive your choice.",
    "auth_failed": "Sorry, that is not correct.",
    "goodbye": "Goodbye.",
    "closed": "We are closed.",
    "queue_position": "You are number {position} in the queue.",
    "queue_wait": "Your expected wait is about {minutes} minutes.",
    "queue_wait_soon": "An adviser will be with you shortly.",
    "callback_offer": "To be called back, press 1.",
    "callback_taken": "Thank you. We will call you back. Goodbye.",
    "callback_greeting": "Hello, this is the bank returning your call.",
    "error": "Sorry, we are having technical difficulties.",
}


def menus_yaml() -> str:
    """The simulation's call flow: key 1 general queue, key 2 VIP queue, nothing else."""
    messages = "\n".join(f"  {k}: {{en: {json.dumps(v)}}}" for k, v in _MESSAGES.items())
    return f"""\
languages:
  en: {{say_language: en-US}}
default_language: en
start: route
messages:
{messages}
nodes:
  route:
    kind: menu
    prompt: {{en: "{MENU_PROMPT}"}}
    options:
      - {{key: "1", goto: general}}
      - {{key: "2", goto: vip}}
    timeout: 5
    retries: 1
    on_no_input: general
    on_invalid: general
  general:
    kind: transfer
    queue: general
    reason: simulation
    prompt: {{en: "{TRANSFER_PROMPT}"}}
    after_hours: bye
  vip:
    kind: transfer
    queue: vip
    flag: vip
    reason: simulation
    prompt: {{en: "{TRANSFER_PROMPT}"}}
    after_hours: bye
  bye:
    kind: hangup
    prompt: {{en: "Goodbye."}}
"""


def agent_number(agent_id: str) -> str:
    """g01 -> +15550200001, c01 -> +15550300001."""
    team = "2" if agent_id.startswith("g") else "3"
    return f"+1555{team}{int(agent_id[1:]):06d}"


def queues_yaml(params: SimulationParams) -> str:
    """Queues and agents of the simulation, unscaled (validated like queues.yaml)."""
    if params.care_agents:
        vip_rules = (
            "    team: care\n"
            f"    overflow_after_s: {params.vip_overflow_s:g}\n"
            "    overflow_to: general\n"
        )
    else:  # one pool: general agents serve VIPs first
        vip_rules = "    skills: {general: 1}\n"
    common = (
        "    calendar: always\n"
        f"    short_abandon_s: {params.short_abandon_s:g}\n"
        f"    wrap_up_s: {params.wrap_up_s:g}\n"
        "    strategy: longest_idle\n"
        "    announce_every_s: 30\n"
        "    callback_offer_s: 86400\n"  # simulated callers never take a callback
    )
    agents = [
        f'  {a}: {{name: "General {a}", phone: "{agent_number(a)}", skills: {{general: 1}}}}'
        for a in params.general_ids()
    ] + [
        f'  {a}: {{name: "Care {a}", phone: "{agent_number(a)}", team: care}}'
        for a in params.care_ids()
    ]
    return (
        "default_queue: general\n"
        "vip_queue: vip\n"
        "routing:\n"
        "  reserve_lease_s: 10\n"
        "  ring_timeout_s: 25\n"
        "  sweep_every_s: 1\n"
        "queues:\n"
        "  general:\n"
        "    skills: {general: 1}\n"
        f"    target_answer_s: {params.target_s:g}\n"
        f"    priority: {GENERAL_PRIORITY}\n"
        f"{common}"
        "  vip:\n"
        f"{vip_rules}"
        f"    target_answer_s: {params.vip_target:g}\n"
        f"    priority: {VIP_PRIORITY}\n"
        f"{common}"
        "agents:\n" + "\n".join(agents) + "\n"
    )


def simulation_config(params: SimulationParams, base: HotlineConfig) -> HotlineConfig:
    """The service configuration of a simulation, unscaled: the simulation's calendar,
    queues, agents and menu, with the base configuration's calling and survey settings."""
    issues: list[ConfigIssue] = []
    calendars = load_calendars(load_yaml_text(CALENDARS_YAML, "<simulate calendars>"), "", issues)
    if issues:  # pragma: no cover - constant text
        raise ValueError(f"simulation calendars: {issues}")
    queues = load_queues_text(queues_yaml(params), "<simulate queues>", calendars)
    flow = parse_flow(
        load_yaml_text(menus_yaml(), "<simulate menus>"), "<simulate menus>", queues=queues.queues
    )
    # no after-call survey: simulated callers would let every question time out
    surveys = dataclasses.replace(base.surveys, default_mode=SurveyMode.OFF, modes={})
    return dataclasses.replace(base, calendars=calendars, queues=queues, flow=flow, surveys=surveys)


def service_config(params: SimulationParams, base: HotlineConfig) -> HotlineConfig:
    """What the service processes run: the simulation configuration with its real-time
    durations divided by the speed-up."""
    config = simulation_config(params, base)
    return dataclasses.replace(config, queues=scale_queues(config.queues, params.speedup))


def dial_timeout_s(config: HotlineConfig) -> int:
    """The emulated <Dial timeout> the service will send with this configuration."""
    return max(DIAL_TIMEOUT_FLOOR_S, round(config.queues.routing.ring_timeout_s))


# ------------------------------------------------------------------ service processes


@dataclass(frozen=True)
class ServiceSpec:
    """What one service process needs (picklable: the spawn start method sends it)."""

    index: int
    port: int
    redis_url: str
    key_prefix: str
    emulator_url: str
    account_sid: str
    auth_token: str = field(repr=False)
    config_dir: str
    data_dir: str
    params: SimulationParams
    log_level: int = logging.WARNING
    api_tokens: dict[str, str] = field(default_factory=dict, repr=False)


def _settings(spec: ServiceSpec) -> Settings:
    return Settings(
        account_sid=spec.account_sid,
        auth_token=spec.auth_token,
        public_url=f"http://127.0.0.1:{spec.port}",
        redis_url=spec.redis_url,
        port=spec.port,
        config_dir=Path(spec.config_dir),
        data_dir=Path(spec.data_dir),
        key_prefix=spec.key_prefix,
        twilio_api_base=spec.emulator_url,
        api_tokens=dict(spec.api_tokens),
        json_logs=False,
    )


def _build_app(spec: ServiceSpec) -> web.Application:
    from hotline.app import create_app
    from ivr.accounts import FileAccountBackend

    settings = _settings(spec)
    config = service_config(spec.params, load_config(settings.config_dir))
    accounts = FileAccountBackend.load(settings.config_dir / "accounts.yaml")
    return create_app(settings, config, accounts)


def service_process_main(spec: ServiceSpec, ready: MpEvent) -> None:
    """Entry point of one spawned service process: the whole service on the shared port
    (SO_REUSEPORT) until SIGTERM."""
    from config.logs import setup_logging

    setup_logging(spec.log_level, json_lines=False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us with SIGTERM
    asyncio.run(_serve_until_terminated(spec, ready))


async def _serve_until_terminated(spec: ServiceSpec, ready: MpEvent) -> None:
    runner = web.AppRunner(_build_app(spec), access_log=None, handle_signals=False)
    await runner.setup()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await web.TCPSite(runner, "127.0.0.1", spec.port, reuse_port=True).start()
        ready.set()
        await stop.wait()
    finally:
        await runner.cleanup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def run_service(
    specs: list[ServiceSpec], *, in_process: bool, start_timeout_s: float = 60.0
) -> AsyncIterator[str]:
    """Start the service (in this process, or one spawned process per spec) and yield its
    base URL; stop it afterwards."""
    port = specs[0].port
    if in_process:
        runner = web.AppRunner(_build_app(specs[0]), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", port).start()
            yield f"http://127.0.0.1:{port}"
        finally:
            await runner.cleanup()
        return
    procs: list[Any] = []
    try:
        events = []
        for spec in specs:
            ready = _SPAWN.Event()
            proc = _SPAWN.Process(
                target=service_process_main,
                args=(spec, ready),
                name=f"hotline-simulate-{spec.index}",
            )
            proc.start()
            procs.append(proc)
            events.append(ready)
        deadline = time.monotonic() + start_timeout_s
        for proc, ready in zip(procs, events, strict=True):
            while not ready.is_set():
                if not proc.is_alive():
                    raise RuntimeError(f"service process {proc.name} exited at start-up")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"service process {proc.name} did not start in time")
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        await asyncio.to_thread(_stop_processes, procs)


def _stop_processes(procs: list[Any], grace_s: float = 15.0) -> None:
    for proc in procs:
        if proc.is_alive() and proc.pid is not None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace_s
    for proc in procs:
        proc.join(timeout=max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            log.error("service process ignored SIGTERM; killing it", extra={"pid": proc.pid})
            proc.kill()
            proc.join(timeout=5)


# ------------------------------------------------------------------ the live run


@dataclass
class Leg:
    """One ring of an agent for a call, in emulated seconds (emulator clock)."""

    agent_id: str
    ring_start: float
    answer_at: float
    bridge_at: float | None = None
    end_at: float | None = None


@dataclass
class Track:
    """What the simulator observed of one call (emulator clock, emulated seconds)."""

    call: Call
    placed_at: float = math.nan
    enqueued_at: float | None = None
    emu_call: EmuCall | None = None
    legs: list[Leg] = field(default_factory=list)

    @property
    def joined_at(self) -> float:
        """When the caller pressed the menu key: the call was answered (its first document
        loaded), heard the prompt and pressed. The service's /voice latency is menu time,
        not queue time (DESIGN.md: the wait runs from joining the queue)."""
        call = self.emu_call
        answered = call.answered_at if call is not None else None
        return (self.placed_at if answered is None else answered) + MENU_S


@dataclass
class PlotData:
    live_waits: list[float]
    ideal_waits: list[float]
    live_sl: list[tuple[float, float | None]]
    ideal_sl: list[tuple[float, float | None]]


@dataclass
class Outcome:
    report: dict[str, Any]
    plot: PlotData


class LiveRun:
    """The emulator side of one simulation: agents, callers, and what they saw."""

    def __init__(self, params: SimulationParams, workload: Workload, emu: CarrierEmulator) -> None:
        self.params = params
        self.workload = workload
        self.emu = emu
        self.clock = emu.clock
        self.tracks = {c.call_id: Track(c) for c in workload.calls}
        self.origin = 0.0
        self.origin_wall = 0.0  # time.time() at the run's emulated origin
        self.placed = 0
        self.agent_of_number: dict[str, str] = {}
        self.phones: dict[str, AgentPhone] = {}
        for agent_id in (*params.general_ids(), *params.care_ids()):
            number = agent_number(agent_id)
            phone = AgentPhone(
                number=number,
                answer_after=self._ring_sampler(agent_id),
                handle_time=self._handle_sampler(agent_id),
                max_calls=1,
            )
            emu.register_agent(phone)
            self.phones[agent_id] = phone
            self.agent_of_number[number] = agent_id

    # --- samplers the emulator calls inside a call's tasks ----------------------------
    def _track(self) -> Track | None:
        call_id = CALL_ID.get()
        return None if call_id is None else self.tracks.get(call_id)

    def _ring_sampler(self, agent_id: str) -> Callable[[], float]:
        def ring() -> float:
            track = self._track()
            now = self.clock.elapsed()
            if track is None:
                return 0.0
            track.legs.append(Leg(agent_id, now, now + track.call.ring_s))
            return track.call.ring_s

        return ring

    def _handle_sampler(self, agent_id: str) -> Callable[[], float]:
        def handle() -> float:
            track = self._track()
            now = self.clock.elapsed()
            if track is None:
                return self.params.aht_s
            leg = next((g for g in reversed(track.legs) if g.agent_id == agent_id), None)
            if leg is None:  # pragma: no cover - the ring sampler always runs first
                leg = Leg(agent_id, now, now)
                track.legs.append(leg)
            leg.bridge_at = now
            # the handle time runs from the pick-up: the whisper the agent heard is part of it
            leg.end_at = max(now, leg.answer_at + track.call.handle_s)
            return max(0.0, leg.answer_at + track.call.handle_s - now)

        return handle

    def _patience(self, track: Track) -> Callable[[], float]:
        def patience() -> float:
            now = self.clock.elapsed()
            if track.enqueued_at is None:
                track.enqueued_at = now
            if math.isinf(track.call.patience_s):
                return NEVER_S
            return max(0.0, track.joined_at + track.call.patience_s - now)

        return patience

    # --- placing calls ----------------------------------------------------------------
    async def place(self, track: Track, voice_url: str) -> None:
        token = CALL_ID.set(track.call.call_id)
        try:
            track.placed_at = self.clock.elapsed()
            track.emu_call = await self.emu.place_inbound_call(
                voice_url=voice_url,
                from_=f"+8613{track.call.call_id:09d}",
                to=HOTLINE,
                script=CallerScript(
                    presses=("2" if track.call.vip else "1",),
                    patience=self._patience(track),
                ),
            )
        finally:
            CALL_ID.reset(token)
        self.placed += 1

    async def place_all(self, voice_url: str) -> None:
        """Place each call MENU_S before its arrival, in emulated time from `origin`."""
        loop = asyncio.get_running_loop()
        start_real = loop.time()
        self.origin = self.clock.elapsed() + MENU_S
        self.origin_wall = time.time() + self.clock.real(MENU_S)
        for call in self.workload.calls:
            due = start_real + self.clock.real(call.arrival_s)  # origin - MENU_S + arrival
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.place(self.tracks[call.call_id], voice_url)

    @staticmethod
    def resolved(track: Track) -> bool:
        """The call reached an agent, or is over (the caller hung up, or it failed)."""
        call = track.emu_call
        return call is not None and (
            call.finished or call.transcript.outcome.answered_by is not None
        )

    def resolved_count(self) -> int:
        return sum(1 for t in self.tracks.values() if self.resolved(t))

    def waiting(self) -> int:
        return sum(
            1 for t in self.tracks.values() if t.emu_call is not None and not self.resolved(t)
        )

    async def settle(self, limit_real_s: float, poll_s: float = 0.05) -> None:
        """Wait until every call reached an agent or ended; what happens after pick-up
        cannot change a wait (handle times are known), so talk is not waited for."""
        deadline = asyncio.get_running_loop().time() + limit_real_s
        while asyncio.get_running_loop().time() < deadline:
            if all(self.resolved(t) for t in self.tracks.values()):
                return
            await asyncio.sleep(poll_s)

    # --- what happened ------------------------------------------------------------------
    def rel(self, t: float) -> float:
        return t - self.origin

    def live_calls(self) -> list[LiveCall]:
        out = []
        for track in self.tracks.values():
            c = track.call
            call = track.emu_call
            joined = self.rel(track.joined_at) if call is not None else c.arrival_s
            answered = abandoned = False
            agent_id: str | None = None
            wait = 0.0
            handle = 0.0
            if call is not None:
                outcome = call.transcript.outcome
                if outcome.answered_by:
                    agent_id = self.agent_of_number.get(outcome.answered_by)
                    leg = next(
                        (
                            g
                            for g in reversed(track.legs)
                            if g.agent_id == agent_id and g.bridge_at is not None
                        ),
                        None,
                    )
                    if leg is not None:
                        answered = True
                        wait = leg.answer_at - track.joined_at
                        handle = c.handle_s + self.params.wrap_up_s
                elif outcome.abandoned and call.ended_at is not None:
                    abandoned = True
                    wait = call.ended_at - track.joined_at
            out.append(
                LiveCall(
                    call_id=c.call_id,
                    call_sid=call.sid if call is not None else "",
                    priority=c.priority,
                    vip=c.vip,
                    joined_s=joined,
                    wait_s=max(0.0, wait),
                    answered=answered,
                    abandoned=abandoned,
                    agent_id=agent_id if answered else None,
                    handle_s=handle,
                )
            )
        return out

    def spans(self) -> list[AgentSpan]:
        """Answered legs, from ringing to the end of talk (emulated, run-relative)."""
        out = []
        for track in self.tracks.values():
            for leg in track.legs:
                if leg.bridge_at is not None and leg.end_at is not None:
                    out.append(
                        AgentSpan(
                            leg.agent_id,
                            track.call.call_id,
                            self.rel(leg.ring_start),
                            self.rel(leg.end_at),
                        )
                    )
        return out

    def busy_s(self) -> float:
        """Agent time ringing, talking and in wrap-up within [0, duration]."""
        horizon = self.params.duration_s
        total = 0.0
        for track in self.tracks.values():
            for leg in track.legs:
                start = self.rel(leg.ring_start)
                if leg.end_at is not None:
                    end = self.rel(leg.end_at) + self.params.wrap_up_s
                else:  # rang, never bridged (the caller left or the agent did not answer)
                    end = self.rel(leg.answer_at)
                total += max(0.0, min(end, horizon) - max(start, 0.0))
        return total

    def busy_legs(self) -> int:
        return sum(1 for p in self.phones.values() for leg in p.legs if leg.outcome == "busy")

    def answered_legs_by_call(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for phone in self.phones.values():
            for leg in phone.legs:
                if leg.outcome == "answered" and leg.parent_call_sid:
                    counts[leg.parent_call_sid] = counts.get(leg.parent_call_sid, 0) + 1
        return counts

    def stale_dials(self) -> int:
        return sum(
            1 for p in self.phones.values() for leg in p.legs if leg.outcome == "whisper-hangup"
        )


async def service_calls(
    redis: aioredis.Redis,
    keys: Keys,
    sids: list[str],
    speedup: float,
    *,
    origin_ms: float,
    group: str = "main",
) -> dict[str, ServiceCall]:
    """Each call as the store recorded it (ended calls: the done records; still open: the
    live ones), times unscaled; `origin_ms` is the run's origin on Redis's clock. Reads
    the routing records directly: `CallStatus` has neither the wait nor a ms join time."""
    done_key, live_key = keys.route_done(group), keys.route_calls(group)
    pipe = redis.pipeline(transaction=False)
    for sid in sids:
        pipe.hget(done_key, sid)
        pipe.hget(live_key, sid)
    rows = await pipe.execute()
    out: dict[str, ServiceCall] = {}
    for i, sid in enumerate(sids):
        raw = rows[2 * i] or rows[2 * i + 1]
        if raw is None:
            out[sid] = ServiceCall(sid, "missing", None, None)
            continue
        record = json.loads(raw)
        waited = record.get("waited")
        joined = record.get("j")
        out[sid] = ServiceCall(
            call_sid=sid,
            state=str(record.get("st", "unknown")),
            wait_s=None if waited is None else float(waited) * speedup / 1000.0,
            agent_id=record.get("a"),
            joined_s=None if joined is None else (float(joined) - origin_ms) * speedup / 1000.0,
        )
    return out


def _unscale_snapshot(snapshot: dict[str, Any], speedup: float) -> dict[str, Any]:
    """The service's own figures for the run (its 'today' counters), times unscaled."""

    def figures(fig: dict[str, Any]) -> dict[str, Any]:
        out = {
            k: fig.get(k)
            for k in (
                "offered",
                "answered",
                "abandoned",
                "abandoned_short",
                "answered_in_target",
                "abandoned_after_target",
                "service_level",
                "abandon_rate",
                "no_answer",
                "lease_expired",
                "dispatch_failed",
                "overflowed",
            )
        }
        for k in ("asa_s", "aht_s", "max_wait_answered_s"):
            value = fig.get(k)
            out[k] = None if value is None else float(value) * speedup
        return out

    centre = snapshot["centre"]
    result = figures(centre["today"])
    result["occupancy"] = centre["occupancy"].get("today")
    result["queues"] = {name: figures(q["today"]) for name, q in snapshot["queues"].items()}
    return result


@dataclass
class LoopLag:
    """How late this process's event loop wakes up (the emulator's timers run on it):
    the machine's own contribution to extra wait, before any webhook."""

    period_s: float = 0.01
    samples: list[float] = field(default_factory=list)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.period_s)
            self.samples.append(max(0.0, loop.time() - start - self.period_s))

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.samples)
        if not ordered:
            return {"samples": 0}
        return {
            "samples": len(ordered),
            "p50_ms": 1000 * ordered[len(ordered) // 2],
            "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
            "max_ms": 1000 * ordered[-1],
            "over_50ms": sum(1 for x in ordered if x > 0.05),
        }


async def _progress(run: LiveRun, out: TextIO, every_s: float = 0.5) -> None:
    tty = out.isatty()
    last_decile = -1
    total = len(run.workload.calls)
    while True:
        line = progress_line(
            simulated_s=max(0.0, run.rel(run.clock.elapsed())),
            duration_s=run.params.duration_s,
            placed=run.placed,
            total=total,
            finished=run.resolved_count(),
            waiting=run.waiting(),
        )
        if tty:
            out.write("\r" + line)
            out.flush()
        else:
            decile = int(10 * max(0.0, run.rel(run.clock.elapsed())) / run.params.duration_s)
            if decile != last_decile:
                out.write(line + "\n")
                out.flush()
                last_decile = decile
        await asyncio.sleep(every_s)


async def simulate(
    params: SimulationParams,
    *,
    redis_url: str,
    config_dir: Path = Path("config"),
    in_process: bool | None = None,
    progress: TextIO | None = None,
    key_prefix: str | None = None,
    keep_keys: bool = False,
    log_level: int = logging.WARNING,
    per_call: bool = False,
    port: int | None = None,
    api_tokens: Mapping[str, str] | None = None,
    hold_s: float = 0.0,
) -> Outcome:
    """One live simulation and its comparison; `redis_url` is shared by every process.

    To watch a run (a wallboard, a scraper): `port` fixes the service's port (else a free
    one), `key_prefix` its Redis keys (it must hold no key yet: they are deleted after the
    run unless `keep_keys`), `api_tokens` its bearer tokens (token -> role), and `hold_s`
    keeps it serving that many real seconds after the run (announced on `progress`, or
    stderr), before the calls still talking are hung up."""
    workload = generate(params.workload_spec(), params.seed)
    base = load_config(config_dir)
    scaled = service_config(params, base)
    dial_timeout = dial_timeout_s(scaled)
    longest_ring = max((c.ring_s for c in workload.calls), default=0.0)
    if longest_ring >= dial_timeout:
        raise ValueError(
            f"a ring time of {longest_ring:.1f} s would outlast the service's <Dial timeout> of "
            f"{dial_timeout} s (the ring timeout is scaled by the speed-up, and floored at "
            f"{DIAL_TIMEOUT_FLOOR_S} s); choose shorter ring times"
        )
    if in_process is None:
        in_process = params.workers == 1
    prefix = key_prefix or f"hlsim:{uuid.uuid4().hex[:10]}:"
    auth_token = f"simulate-{uuid.uuid4().hex}"
    keys = Keys(prefix=prefix)
    if key_prefix:
        probe = connect(redis_url)  # one server, Sentinel or Cluster, as the service
        try:
            taken = [k async for k in probe.scan_iter(match=f"{prefix}*", count=500)]
        finally:
            await probe.aclose()
        if taken:
            raise ValueError(
                f"key prefix {prefix!r} already holds {len(taken)} key(s) (e.g. {taken[0]}); "
                "a simulation needs a prefix of its own"
            )
    ideal = run_ideal(workload, params.ideal_config())

    emu = CarrierEmulator(ACCOUNT_SID, auth_token, speedup=params.speedup)
    emu_runner = await emu.serve("127.0.0.1", 0)
    port = port or free_port()
    data_dir = tempfile.mkdtemp(prefix="hotline-simulate-")
    specs = [
        ServiceSpec(
            index=i,
            port=port,
            redis_url=redis_url,
            key_prefix=prefix,
            emulator_url=emu.public_url or "",
            account_sid=ACCOUNT_SID,
            auth_token=auth_token,
            config_dir=str(config_dir),
            data_dir=data_dir,
            params=params,
            log_level=log_level,
            api_tokens=dict(api_tokens or {}),
        )
        for i in range(params.workers)
    ]
    redis = connect(redis_url)
    run = LiveRun(params, workload, emu)
    progress_task: asyncio.Task[None] | None = None
    lag = LoopLag()
    lag_task = asyncio.create_task(lag.run())
    real_start = time.monotonic()
    try:
        async with run_service(specs, in_process=in_process) as base_url:
            store = QueueStore(redis, keys, scaled.queues)
            redis_offset_ms = await store.sync_clock()
            for agent_id in (*params.general_ids(), *params.care_ids()):
                result = await store.login(agent_id, ready=True)
                if result.pairings:  # pragma: no cover - no call waits before the first login
                    raise RuntimeError("an agent was paired while logging in")
            if progress is not None:
                progress_task = asyncio.create_task(_progress(run, progress))
            await run.place_all(f"{base_url}/voice")
            await run.settle(emu.clock.real(DRAIN_LIMIT_S) + 10.0)
            real_s = time.monotonic() - real_start
            live = run.live_calls()
            spans, busy_s, busy_legs = run.spans(), run.busy_s(), run.busy_legs()
            answered_twice = sum(1 for n in run.answered_legs_by_call().values() if n > 1)
            stale_dials = run.stale_dials()
            errors = [e.to_json() for e in emu.errors]
            internal_errors = len(emu.internal_errors)
            snapshot = await QueueStats(store).snapshot()
            by_sid = await service_calls(
                redis,
                keys,
                [c.call_sid for c in live if c.call_sid],
                params.speedup,
                origin_ms=run.origin_wall * 1000.0 + redis_offset_ms,
            )
            if progress_task is not None:
                progress_task.cancel()
            if hold_s > 0:
                out = progress or sys.stderr
                out.write(
                    f"\nhotline simulate: run over; the service stays up {hold_s:g} s at "
                    f"{base_url}\n"
                )
                out.flush()
                await asyncio.sleep(hold_s)
            # hang up the calls still talking while the service still answers their webhooks
            await emu.close()
    finally:
        lag_task.cancel()
        await asyncio.gather(lag_task, return_exceptions=True)
        if progress_task is not None:
            progress_task.cancel()
            await asyncio.gather(progress_task, return_exceptions=True)
            if progress is not None and progress.isatty():
                progress.write("\n")
        await emu.close()
        await emu_runner.cleanup()
        if not keep_keys:
            async for key in redis.scan_iter(match=f"{prefix}*", count=500):
                await redis.unlink(key)
        await redis.aclose()

    # the ideal replays the sample path in the order the service saw the calls join
    joined = {
        c.call_id: s.joined_s
        for c in live
        if (s := by_sid.get(c.call_sid)) is not None and s.joined_s is not None
    }
    scheduled_ideal, ideal = ideal, run_ideal(retime(workload, joined), params.ideal_config())
    report = build_report(
        ReportInputs(
            params=params,
            workload=workload,
            live=live,
            ideal=ideal,
            scheduled_ideal=scheduled_ideal,
            spans=spans,
            busy_legs=busy_legs,
            errors=errors,
            internal_errors=internal_errors,
            service_calls=by_sid,
            service_snapshot=_unscale_snapshot(snapshot, params.speedup),
            busy_s=busy_s,
            real_s=real_s,
            extra={
                "emulator_calls_answered_twice": answered_twice,
                "stale_dials": stale_dials,
                "service_processes": params.workers,
                "in_process": in_process,
                "menu_s": MENU_S,
                "simulator_loop_lag": lag.summary(),
            },
        ),
        agreement_tolerance_s=AGREEMENT_LATENCY_S * params.speedup,
        per_call=per_call,
    )
    arrivals = {c.call_id: c.arrival_s for c in workload.calls}  # buckets by drawn arrival
    done = [c for c in live if not c.lost]
    ideal_rows = list(ideal.outcomes)
    plot = PlotData(
        live_waits=[c.wait_s for c in done if c.answered],
        ideal_waits=[o.wait_s for o in ideal_rows if o.answered],
        live_sl=sl_over_time(done, arrivals, [c.call_id for c in done], params),
        ideal_sl=sl_over_time(ideal_rows, arrivals, [o.call_id for o in ideal_rows], params),
    )
    return Outcome(report, plot)


# ------------------------------------------------------------------ plot


def write_plot(outcome: Outcome, path: Path) -> None:
    """Wait distribution (live, ideal, Erlang C) and service level over the run (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report, data = outcome.report, outcome.plot
    p = report["params"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    horizon = max([*data.live_waits, *data.ideal_waits, 2 * p["target_s"], 1.0])
    grid = [horizon * i / 200 for i in range(201)]

    def cdf(values: list[float]) -> list[float]:
        n = len(values) or 1
        return [sum(1 for v in values if v <= t) / n for t in grid]

    ax1.plot(grid, cdf(data.live_waits), label="live (answered)")
    ax1.plot(grid, cdf(data.ideal_waits), label="ideal, same sample path", linestyle="--")
    erl = report["erlang_c"]
    if erl.get("p_wait") is not None:
        n, a, h = erl["agents"], erl["traffic_erlangs"], erl["aht_s"]
        ax1.plot(
            grid,
            [1 - erl["p_wait"] * math.exp(-(n - a) * t / h) for t in grid],
            label="Erlang C",
            linestyle=":",
        )
    ax1.axvline(p["target_s"], color="grey", linewidth=0.8)
    ax1.set_xlabel("wait (s)")
    ax1.set_ylabel("share of calls answered within")
    ax1.set_title("Wait distribution")
    ax1.legend()
    for series, label, style in ((data.live_sl, "live", "-"), (data.ideal_sl, "ideal", "--")):
        xs = [t / 60 for t, v in series if v is not None]
        ys = [v for _, v in series if v is not None]
        ax2.plot(xs, ys, label=label, linestyle=style, marker="o", markersize=3)
    if erl.get("service_level") is not None:
        ax2.axhline(erl["service_level"], color="grey", linestyle=":", label="Erlang C")
    ax2.set_ylim(0, 1.02)
    ax2.set_xlabel("simulated minutes")
    ax2.set_ylabel(f"service level at {p['target_s']:g} s (cumulative)")
    ax2.set_title("Service level over the run")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ------------------------------------------------------------------ command line


def _positive(kind: type[float] | type[int]) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        try:
            value = kind(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {raw!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {raw}")
        return value

    return parse


def _distribution(raw: str) -> Any:
    try:
        return parse_distribution(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _patience(raw: str) -> Any:
    """A bare number is the mean of exponential patience; otherwise a distribution."""
    try:
        return parse_patience(f"exp:{raw}" if _is_number(raw) else raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _is_number(raw: str) -> bool:
    try:
        float(raw)
    except ValueError:
        return False
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--calls-per-hour", type=_positive(float), required=True, help="Poisson arrival rate")
    a("--aht", type=_positive(float), required=True, help="mean talk time in seconds")
    a("--agents", type=_positive(int), required=True, help="general agents")
    a("--target", type=_positive(float), default=30.0, help="target answer time (s)")
    a("--duration", type=_positive(float), default=3600.0, help="simulated seconds of arrivals")
    a(
        "--patience",
        type=_patience,
        default=None,
        help="caller patience: a mean in seconds (exponential) or a distribution such as "
        "fixed:60 or lognormal:60,30; default: callers never hang up",
    )
    a("--vip-share", type=float, default=0.0, help="share of VIP callers (0..1)")
    a("--care-agents", type=int, default=0, help="VIP-only care-team agents (default 0)")
    a("--vip-target", type=_positive(float), default=None, help="VIP target (default --target)")
    a(
        "--vip-overflow",
        type=float,
        default=0.0,
        help="with care agents: seconds before a VIP call may go to a general agent",
    )
    a("--handle", type=_distribution, default=None, help="talk time distribution (exp:AHT)")
    a("--ring", type=_distribution, default=None, help="agent ring time (default fixed:0)")
    a("--wrap-up", type=float, default=0.0, help="agent wrap-up after each call (s)")
    a(
        "--speedup",
        type=_positive(float),
        default=DEFAULT_SPEEDUP,
        help=f"divide every duration by K (default {DEFAULT_SPEEDUP:g})",
    )
    a("--workers", type=_positive(int), default=1, help="service processes sharing Redis")
    a(
        "--processes",
        action="store_true",
        help="run the service in a separate process even with --workers 1",
    )
    a("--seed", type=int, default=1)
    a("--json", action="store_true", help="print the report as one JSON object")
    a("--plot", type=Path, default=None, metavar="PNG", help="draw waits and service level")
    a("--no-progress", action="store_true", help="no progress bar on stderr")
    a("--calls", action="store_true", help="with --json: every call's row (live, ideal, service)")
    a(
        "--port",
        type=_positive(int),
        default=None,
        help="the service's port (W=1 in this process; default: a free port), so a wallboard "
        "can attach: /dashboard, /api/v1/stats, /metrics (sign in with config/users.yaml; "
        "bearer tokens from HOTLINE_API_TOKENS)",
    )
    a(
        "--key-prefix",
        default=None,
        help="the run's Redis key prefix (must be unused; deleted after the run)",
    )
    a(
        "--hold",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep the service up this long after the run (announced on stderr)",
    )


def params_from_args(args: argparse.Namespace) -> SimulationParams:
    from queueing.workload import Fixed

    return SimulationParams(
        calls_per_hour=args.calls_per_hour,
        aht_s=args.aht,
        agents=args.agents,
        target_s=args.target,
        duration_s=args.duration,
        handle=args.handle,
        ring=args.ring if args.ring is not None else Fixed(0.0),
        patience=args.patience,
        vip_share=args.vip_share,
        care_agents=args.care_agents,
        vip_target_s=args.vip_target,
        vip_overflow_s=args.vip_overflow,
        wrap_up_s=args.wrap_up,
        speedup=args.speedup,
        workers=args.workers,
        seed=args.seed,
    )


def cmd_simulate(args: argparse.Namespace, redis_url: str | None, config_dir: Path) -> int:
    """Run one simulation (an embedded Redis when `redis_url` is None) and print the report."""
    try:
        params = params_from_args(args)
    except ValueError as exc:
        print(f"hotline simulate: {exc}", file=sys.stderr)
        return 2
    embedded = None
    if not redis_url:
        from config.redis_conn import start_embedded

        embedded = start_embedded(Path(tempfile.mkdtemp(prefix="hotline-simulate-redis-")))
        redis_url = embedded.url
    try:
        outcome = asyncio.run(
            simulate(
                params,
                redis_url=redis_url,
                config_dir=config_dir,
                in_process=False if args.processes else None,
                progress=None if args.no_progress else sys.stderr,
                per_call=args.calls,
                port=args.port,
                key_prefix=args.key_prefix,
                api_tokens=Settings.from_env().api_tokens,
                hold_s=max(0.0, args.hold),
            )
        )
    except ValueError as exc:
        print(f"hotline simulate: {exc}", file=sys.stderr)
        return 2
    finally:
        if embedded is not None:
            embedded.shutdown()
    if args.plot is not None:
        write_plot(outcome, args.plot)
    if args.json:
        print(json.dumps(outcome.report, indent=2, sort_keys=True))
    else:
        print(format_report(outcome.report))
    return 0
