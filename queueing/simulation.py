"""The pure parts of `hotline simulate`: parameters, staffing, time scaling, the report.

`hotline.simulate` runs the live simulation (the service, the carrier emulator, emulated
agents and callers, all on one seeded sample path from :mod:`queueing.workload`); this
module holds what needs no I/O, so it is tested by tables:

- :class:`SimulationParams`: what to simulate; the workload spec and the ideal
  dispatcher's configuration (:mod:`queueing.ideal`) follow from it, so the live run and
  the ideal replay see the same agents, targets and routing policy;
- :func:`scale_queues`: the service's own real-time durations divided by the speed-up
  (the emulator divides every emulated duration itself, see ``docs/SIMULATION.md``);
- :class:`LiveCall`, :class:`AgentSpan` and :func:`build_report`: per-call ground truth
  from the emulator, compared with the ideal replay on the same sample path, with Erlang C
  and with the service's own statistics; every time in the report is unscaled.

Staffing: ``agents`` general agents (skill ``general``) and ``care_agents`` VIP-only care
agents (team ``care``). With care agents, a VIP call goes to a free care agent first and,
after ``vip_overflow_s`` (0: at once), to any free general agent; with none, VIPs are
served by the general pool, ahead of general calls (priority 1 against 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from config.queues import QueuesConfig
from queueing import erlang, metrics
from queueing.ideal import (
    GENERAL,
    VIP,
    CallOutcome,
    IdealConfig,
    IdealResult,
    SimAgent,
)
from queueing.workload import (
    Distribution,
    Exponential,
    Fixed,
    Workload,
    WorkloadSpec,
)

__all__ = [
    "GENERAL_PRIORITY",
    "MIN_LEASE_REAL_S",
    "MIN_SWEEP_REAL_S",
    "VIP_PRIORITY",
    "AgentSpan",
    "LiveCall",
    "ServiceCall",
    "SimulationParams",
    "build_report",
    "call_rows",
    "double_assignments",
    "figures",
    "format_report",
    "progress_line",
    "retime",
    "scale_queues",
    "sl_over_time",
]

GENERAL_PRIORITY = 0
VIP_PRIORITY = 1

# Floors on the service's scaled real-time durations. A reservation lease shorter than the
# slowest REST round trip under load would expire healthy reservations (the agent would
# go not_ready with 'lease_expired'); the lease only matters when a process dies, which a
# simulation does not do, so a floor costs nothing. The sweeper floor keeps W processes
# from spinning on Redis at very large speed-ups.
MIN_LEASE_REAL_S = 2.0
MIN_SWEEP_REAL_S = 0.01


@dataclass(frozen=True)
class SimulationParams:
    """What to simulate. Times are emulated (unscaled) seconds."""

    calls_per_hour: float
    aht_s: float  # mean talk time (the handle distribution's mean unless `handle` is given)
    agents: int  # general agents
    target_s: float = 30.0
    duration_s: float = 3600.0
    handle: Distribution | None = None  # None: exponential with mean aht_s
    ring: Distribution = Fixed(0.0)
    patience: Distribution | None = None  # None: callers never hang up
    vip_share: float = 0.0
    care_agents: int = 0  # VIP-only care team
    vip_target_s: float | None = None  # None: target_s
    vip_overflow_s: float = 0.0  # care agents first, then general agents after this wait
    wrap_up_s: float = 0.0
    short_abandon_s: float = metrics.DEFAULT_SHORT_ABANDON_S
    speedup: float = 60.0
    workers: int = 1
    seed: int = 1

    def __post_init__(self) -> None:
        for name in ("calls_per_hour", "aht_s", "target_s", "duration_s", "speedup"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in ("vip_overflow_s", "wrap_up_s", "short_abandon_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        if self.agents < 0 or self.care_agents < 0 or self.agents + self.care_agents < 1:
            raise ValueError("at least one agent is needed")
        if self.agents < 1:
            raise ValueError("general calls need at least one general agent (--agents)")
        if not 0 <= self.vip_share <= 1:
            raise ValueError(f"vip_share must be in [0, 1], got {self.vip_share!r}")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.vip_target_s is not None and not self.vip_target_s > 0:
            raise ValueError("vip_target_s must be > 0")

    @property
    def handle_distribution(self) -> Distribution:
        return self.handle if self.handle is not None else Exponential(self.aht_s)

    @property
    def vip_target(self) -> float:
        return self.vip_target_s if self.vip_target_s is not None else self.target_s

    @property
    def total_agents(self) -> int:
        return self.agents + self.care_agents

    @property
    def mean_handle_s(self) -> float:
        """AHT as Erlang C sees it: mean talk time plus wrap-up."""
        return float(self.handle_distribution.mean) + self.wrap_up_s

    def target_for(self, priority: int) -> float:
        return self.vip_target if priority == VIP_PRIORITY else self.target_s

    def workload_spec(self) -> WorkloadSpec:
        return WorkloadSpec(
            calls_per_hour=self.calls_per_hour,
            duration_s=self.duration_s,
            handle=self.handle_distribution,
            ring=self.ring,
            patience=self.patience,
            vip_share=self.vip_share,
            vip_priority=VIP_PRIORITY,
        )

    def general_ids(self) -> tuple[str, ...]:
        return tuple(f"g{i:02d}" for i in range(1, self.agents + 1))

    def care_ids(self) -> tuple[str, ...]:
        return tuple(f"c{i:02d}" for i in range(1, self.care_agents + 1))

    def ideal_agents(self) -> tuple[SimAgent, ...]:
        """The same agents as the live run, under the same ids."""
        general = tuple(SimAgent(a, {GENERAL: 1}) for a in self.general_ids())
        care = tuple(SimAgent(a, {VIP: 1}, team="care") for a in self.care_ids())
        return general + care

    def ideal_config(self) -> IdealConfig:
        return IdealConfig(
            agents=self.ideal_agents(),
            target_s=self.target_s,
            short_abandon_s=self.short_abandon_s,
            wrap_up_s=self.wrap_up_s,
            # no care team: one pool where VIPs go first
            vip_overflow_s=self.vip_overflow_s if self.care_agents else 0.0,
        )


def scale_queues(
    config: QueuesConfig,
    speedup: float,
    *,
    min_lease_s: float = MIN_LEASE_REAL_S,
    min_sweep_s: float = MIN_SWEEP_REAL_S,
) -> QueuesConfig:
    """A copy of `config` whose real-time durations last 1/speedup as long.

    Scaled: what the service times on Redis's clock or its own (target answer time, short
    abandon threshold, wrap-up, overflow wait, callback threshold against the estimated
    wait, reservation lease, ring timeout, sweeper period). Not scaled: the announcement
    interval, which reaches the carrier only as TwiML (<Pause length>, <Play loop>) that
    the emulator already plays 1/speedup as long; dividing it again would make every
    waiting caller poll the hold loop `speedup` times as often. The ring timeout is both:
    it is the <Dial timeout> (emulated, floored at 5 s by the service) and part of the
    ringing lease (real); it is scaled, so the simulator keeps ring times under 5 s.
    """
    if not (math.isfinite(speedup) and speedup > 0):
        raise ValueError(f"speedup must be positive, got {speedup!r}")
    k = float(speedup)
    queues = {
        name: replace(
            q,
            target_answer_s=q.target_answer_s / k,
            short_abandon_s=q.short_abandon_s / k,
            wrap_up_s=q.wrap_up_s / k,
            overflow_after_s=None if q.overflow_after_s is None else q.overflow_after_s / k,
            callback_offer_s=None if q.callback_offer_s is None else q.callback_offer_s / k,
        )
        for name, q in config.queues.items()
    }
    r = config.routing
    routing = replace(
        r,
        reserve_lease_s=max(r.reserve_lease_s / k, min_lease_s),
        ring_timeout_s=r.ring_timeout_s / k,
        sweep_every_s=max(r.sweep_every_s / k, min_sweep_s),
    )
    return replace(config, queues=queues, routing=routing)


# ------------------------------------------------------------------ per-call records


@dataclass(frozen=True, slots=True)
class LiveCall:
    """What the emulator saw of one call (ground truth), times emulated from run start.

    `joined_s` is when the caller finished the menu (the call was placed that long before);
    `wait_s` runs from there to the agent picking up (answered) or to the caller hanging up
    (abandoned); a lost call neither reached an agent nor hung up by itself.
    Satisfies :class:`queueing.metrics.CallRecord` (for answered and abandoned calls).
    """

    call_id: int
    call_sid: str
    priority: int
    vip: bool
    joined_s: float
    wait_s: float
    answered: bool
    abandoned: bool
    agent_id: str | None
    handle_s: float  # talk + wrap-up; 0 unless answered

    @property
    def lost(self) -> bool:
        return not (self.answered or self.abandoned)


@dataclass(frozen=True, slots=True)
class ServiceCall:
    """What the service's store recorded for one call (times unscaled)."""

    call_sid: str
    state: str  # completed, abandoned, waiting, ... ('missing' when the store has nothing)
    wait_s: float | None
    agent_id: str | None
    joined_s: float | None = None  # when the service put it in the queue, run-relative


def retime(workload: Workload, joined: Mapping[int, float]) -> Workload:
    """The same sample path with the arrival times the service actually saw (call id ->
    join time; calls not in `joined` keep theirs), in the new arrival order.

    At speed-up K, two callers whose arrivals are a few emulated tenths of a second apart
    reach the queue in either order (a few real milliseconds of jitter in the carrier's
    menu and the webhooks), and FIFO then serves them in that order: replaying the ideal
    with the original order would charge the router a swap of their waits (+d for one, -d
    for the other) that the router did not cause. Handle, ring and patience stay those of
    the call."""
    calls = sorted(
        (replace(c, arrival_s=joined.get(c.call_id, c.arrival_s)) for c in workload.calls),
        key=lambda c: (c.arrival_s, c.call_id),
    )
    return replace(workload, calls=tuple(calls))


@dataclass(frozen=True, slots=True)
class AgentSpan:
    """An agent phone leg: from ringing until the talk (and wrap-up) ended, emulated."""

    agent_id: str
    call_id: int
    start_s: float
    end_s: float


def double_assignments(
    spans: Iterable[AgentSpan], *, busy_legs: int = 0, tolerance_s: float = 0.0
) -> dict[str, int]:
    """Agents holding two calls at once (overlapping legs of one agent, or the carrier
    finding the agent's line busy) and calls that reached more than one agent."""
    by_agent: dict[str, list[AgentSpan]] = {}
    legs_of_call: dict[int, set[str]] = {}
    for span in spans:
        by_agent.setdefault(span.agent_id, []).append(span)
        legs_of_call.setdefault(span.call_id, set()).add(span.agent_id)
    overlaps = 0
    for rows in by_agent.values():
        rows.sort(key=lambda s: s.start_s)
        busy_until = -math.inf
        for span in rows:
            if span.start_s < busy_until - tolerance_s:
                overlaps += 1
            busy_until = max(busy_until, span.end_s)
    twice = sum(1 for agents in legs_of_call.values() if len(agents) > 1)
    return {
        "overlapping_legs": overlaps,
        "busy_legs": busy_legs,
        "calls_paired_twice": twice,
        "total": overlaps + busy_legs + twice,
    }


# ------------------------------------------------------------------ figures


def _group_tally(
    rows: Iterable[metrics.CallRecord], params: SimulationParams
) -> tuple[metrics.Tally, list[float]]:
    total = metrics.Tally()
    waits: list[float] = []
    by_prio: dict[int, list[metrics.CallRecord]] = {}
    for r in rows:
        by_prio.setdefault(r.priority, []).append(r)
        if r.answered:
            waits.append(r.wait_s)
    for prio, group in by_prio.items():
        total = total + metrics.tally(
            group, target_s=params.target_for(prio), short_abandon_s=params.short_abandon_s
        )
    return total, waits


def figures(
    rows: Sequence[metrics.CallRecord],
    params: SimulationParams,
    *,
    offered: int | None = None,
) -> dict[str, Any]:
    """Service figures by DESIGN.md's definitions, each priority against its own target.

    `offered` counts calls that never finished (lost) too; `rows` are the calls that were
    answered or abandoned."""
    t, waits = _group_tally(rows, params)
    n_offered = t.offered if offered is None else offered
    return {
        "offered": n_offered,
        "answered": t.answered,
        "abandoned": t.abandoned,
        "short_abandons": t.short_abandons,
        "answered_within_target": t.answered_within_target,
        "abandoned_after_target": t.abandoned_after_target,
        "service_level": metrics.service_level(
            t.answered_within_target, t.answered, t.abandoned_after_target
        ),
        "asa_s": metrics.average_speed_of_answer(t.answered_wait_total_s, t.answered),
        "abandon_rate": metrics.abandonment_rate(t.abandoned, n_offered),
        "aht_s": metrics.average_handle_time(t.handle_total_s, t.answered),
        "p95_wait_s": metrics.percentile(waits, 95),
        "max_wait_s": max(waits, default=None),
    }


def sl_over_time(
    rows: Sequence[metrics.CallRecord],
    arrivals: Mapping[int, float],
    ids: Sequence[int],
    params: SimulationParams,
    *,
    step_s: float = 300.0,
) -> list[tuple[float, float | None]]:
    """Cumulative service level of the calls that arrived by each `step_s` boundary."""
    order = sorted(range(len(rows)), key=lambda i: arrivals[ids[i]])
    out: list[tuple[float, float | None]] = []
    t = step_s
    end = params.duration_s
    while t <= end + 1e-9:
        chosen = [rows[i] for i in order if arrivals[ids[i]] < t]
        tally, _ = _group_tally(chosen, params)
        out.append(
            (
                t,
                metrics.service_level(
                    tally.answered_within_target, tally.answered, tally.abandoned_after_target
                ),
            )
        )
        t += step_s
    return out


def _erlang(params: SimulationParams) -> dict[str, Any]:
    """Erlang C for all agents as one pool at the offered rate and AHT (None if N <= A)."""
    try:
        fig = erlang.evaluate(
            params.calls_per_hour, params.mean_handle_s, params.total_agents, params.target_s
        )
    except ValueError as exc:
        return {"service_level": None, "asa_s": None, "p_wait": None, "error": str(exc)}
    return {
        "agents": params.total_agents,
        "aht_s": params.mean_handle_s,
        "service_level": fig.service_level,
        "asa_s": fig.asa_s,
        "p_wait": fig.p_wait,
        "occupancy": fig.occupancy,
        "traffic_erlangs": fig.traffic_erlangs,
    }


def _pct(values: Sequence[float], q: float) -> float | None:
    return metrics.percentile(values, q)


@dataclass
class ReportInputs:
    """Everything :func:`build_report` compares."""

    params: SimulationParams
    workload: Workload
    live: Sequence[LiveCall]
    ideal: IdealResult
    spans: Sequence[AgentSpan]
    busy_legs: int
    errors: Sequence[Mapping[str, Any]]
    internal_errors: int
    service_calls: Mapping[str, ServiceCall]
    service_snapshot: Mapping[str, Any]  # stats.snapshot(), times already unscaled
    busy_s: float  # agent busy time within [0, duration] (emulator)
    real_s: float  # wall-clock length of the run
    extra: dict[str, Any] = field(default_factory=dict)
    # the ideal on the drawn arrival times (`ideal` replays the order the service saw)
    scheduled_ideal: IdealResult | None = None


def _service_agreement(
    live: Sequence[LiveCall], service: Mapping[str, ServiceCall], tolerance_s: float
) -> dict[str, Any]:
    """Call for call: same outcome, same agent, waits within `tolerance_s`."""
    mismatched: list[dict[str, Any]] = []
    accounting = 0  # outcome or agent differ: the service's books are wrong
    diffs: list[float] = []
    for c in live:
        s = service.get(c.call_sid)
        expect = "completed" if c.answered else "abandoned" if c.abandoned else "lost"
        if s is None:
            accounting += 1
            mismatched.append({"call_id": c.call_id, "emulator": expect, "service": "missing"})
            continue
        # a call still talking when the run ended is 'connected' in the store
        same_outcome = s.state == expect or (expect == "completed" and s.state == "connected")
        same_agent = (not c.answered) or s.agent_id == c.agent_id
        diff = None if s.wait_s is None or c.lost else s.wait_s - c.wait_s
        if diff is not None:
            diffs.append(diff)
        if not (same_outcome and same_agent):
            accounting += 1
        if not (same_outcome and same_agent) or (diff is not None and abs(diff) > tolerance_s):
            mismatched.append(
                {
                    "call_id": c.call_id,
                    "emulator": expect,
                    "service": s.state,
                    "emulator_agent": c.agent_id,
                    "service_agent": s.agent_id,
                    "wait_diff_s": None if diff is None else round(diff, 3),
                }
            )
    return {
        "calls_compared": len(live),
        "mismatches": len(mismatched),
        "outcome_or_agent_mismatches": accounting,
        "wait_mismatches": len(mismatched) - accounting,
        "examples": mismatched[:10],
        "wait_diff_tolerance_s": tolerance_s,
        # service wait minus emulator wait: the service starts the clock when the join
        # reaches Redis (after the menu webhooks) and stops it when the whisper webhook
        # reaches Redis (after the agent picked up)
        "wait_diff_median_s": _pct(diffs, 50),
        "wait_diff_max_abs_s": max((abs(d) for d in diffs), default=None),
    }


def _round(value: Any, digits: int = 4) -> Any:
    if isinstance(value, float):
        return round(value, digits) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _round(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v, digits) for v in value]
    return value


def call_rows(inputs: ReportInputs) -> list[dict[str, Any]]:
    """One row per call: live (emulator), ideal and service side by side."""
    ideal_by_id = {o.call_id: o for o in inputs.ideal.outcomes}
    rows = []
    for c in inputs.live:
        i = ideal_by_id.get(c.call_id)
        s = inputs.service_calls.get(c.call_sid)
        rows.append(
            {
                "call_id": c.call_id,
                "call_sid": c.call_sid,
                "priority": c.priority,
                "joined_s": c.joined_s,
                "outcome": "answered" if c.answered else "abandoned" if c.abandoned else "lost",
                "wait_s": c.wait_s,
                "agent": c.agent_id,
                "ideal_outcome": None if i is None else "answered" if i.answered else "abandoned",
                "ideal_wait_s": None if i is None else i.wait_s,
                "ideal_agent": None if i is None else i.agent_id,
                "service_state": None if s is None else s.state,
                "service_wait_s": None if s is None else s.wait_s,
                "service_agent": None if s is None else s.agent_id,
                "service_joined_s": None if s is None else s.joined_s,
            }
        )
    return rows


def build_report(
    inputs: ReportInputs, *, agreement_tolerance_s: float = 1.0, per_call: bool = False
) -> dict[str, Any]:
    """The simulation report: live figures, the ideal on the same sample path, Erlang C,
    extra wait per call, double assignments, lost calls, carrier errors, the service's own
    statistics and whether they agree call for call. Times are unscaled seconds.

    `agreement_tolerance_s`: how far the service's wait of a call may be from the
    carrier's (the service starts and stops its clock one webhook later than the caller
    and the agent do, so the tolerance is a real latency times the speed-up).
    `per_call`: add every call's row (`calls`)."""
    p = inputs.params
    live = list(inputs.live)
    done = [c for c in live if not c.lost]
    ideal_by_id: dict[int, CallOutcome] = {o.call_id: o for o in inputs.ideal.outcomes}
    ideal_rows = list(inputs.ideal.outcomes)

    live_fig = figures(done, p, offered=len(live))
    ideal_fig = figures(ideal_rows, p)
    staffed = p.total_agents * p.duration_s
    live_fig["occupancy"] = metrics.occupancy(inputs.busy_s, staffed)
    ideal_fig["occupancy"] = metrics.occupancy(inputs.ideal.busy_s, inputs.ideal.staffed_s)
    erl = _erlang(p)

    extra = [c.wait_s - ideal_by_id[c.call_id].wait_s for c in done if c.call_id in ideal_by_id]
    extra_answered = [
        c.wait_s - ideal_by_id[c.call_id].wait_s
        for c in done
        if c.answered and c.call_id in ideal_by_id and ideal_by_id[c.call_id].answered
    ]
    outcome_changed = sum(
        1
        for c in done
        if c.call_id in ideal_by_id and c.answered != ideal_by_id[c.call_id].answered
    )
    doubles = double_assignments(inputs.spans, busy_legs=inputs.busy_legs)

    by_priority: dict[str, Any] = {}
    for prio in sorted({c.priority for c in live}, reverse=True):
        mine = [c for c in done if c.priority == prio]
        theirs = [o for o in ideal_rows if o.priority == prio]
        lf = figures(mine, p, offered=sum(1 for c in live if c.priority == prio))
        idf = figures(theirs, p)
        by_priority[str(prio)] = {
            "label": "vip" if prio == VIP_PRIORITY else "general",
            "target_s": p.target_for(prio),
            **lf,
            "ideal_service_level": idf["service_level"],
            "ideal_asa_s": idf["asa_s"],
            "ideal_abandon_rate": idf["abandon_rate"],
            "ideal": idf,
        }

    error_codes: dict[str, int] = {}
    for e in inputs.errors:
        code = str(e.get("code"))
        error_codes[code] = error_codes.get(code, 0) + 1

    report: dict[str, Any] = {
        "offered": live_fig["offered"],
        "answered": live_fig["answered"],
        "abandoned": live_fig["abandoned"],
        "service_level": live_fig["service_level"],
        "asa_s": live_fig["asa_s"],
        "abandon_rate": live_fig["abandon_rate"],
        "occupancy": live_fig["occupancy"],
        "p95_wait_s": live_fig["p95_wait_s"],
        "ideal_service_level": ideal_fig["service_level"],
        "ideal_asa_s": ideal_fig["asa_s"],
        "ideal_abandon_rate": ideal_fig["abandon_rate"],
        "ideal_occupancy": ideal_fig["occupancy"],
        "extra_wait_p95_s": _pct(extra, 95),
        "extra_wait_median_s": _pct(extra, 50),
        "extra_wait_max_s": max(extra, default=None),
        "extra_wait_answered_p95_s": _pct(extra_answered, 95),
        "outcome_changed_vs_ideal": outcome_changed,
        "erlang_c_service_level": erl["service_level"],
        "erlang_c_asa_s": erl["asa_s"],
        "erlang_c": erl,
        "double_assignments": doubles["total"],
        "double_assignment_detail": doubles,
        "lost_calls": sum(1 for c in live if c.lost),
        "errors": len(inputs.errors) + inputs.internal_errors,
        "error_codes": error_codes,
        "emulator_internal_errors": inputs.internal_errors,
        "by_priority": by_priority,
        "live": live_fig,
        "ideal": ideal_fig,
        "service": dict(inputs.service_snapshot),
        "service_agreement": _service_agreement(live, inputs.service_calls, agreement_tolerance_s),
        "params": {
            "calls_per_hour": p.calls_per_hour,
            "aht_s": p.aht_s,
            "handle": str(p.handle_distribution),
            "ring": str(p.ring),
            "patience": None if p.patience is None else str(p.patience),
            "agents": p.agents,
            "care_agents": p.care_agents,
            "vip_share": p.vip_share,
            "vip_overflow_s": p.vip_overflow_s if p.care_agents else 0.0,
            "target_s": p.target_s,
            "vip_target_s": p.vip_target,
            "wrap_up_s": p.wrap_up_s,
            "duration_s": p.duration_s,
            "speedup": p.speedup,
            "workers": p.workers,
            "seed": p.seed,
        },
        "real_s": inputs.real_s,
        **inputs.extra,
    }
    if inputs.scheduled_ideal is not None:
        sched = figures(list(inputs.scheduled_ideal.outcomes), p)
        by_id = {o.call_id: o for o in inputs.scheduled_ideal.outcomes}
        raw = [c.wait_s - by_id[c.call_id].wait_s for c in done if c.call_id in by_id]
        shift = [
            s.joined_s - by_id[c.call_id].arrival_s
            for c in live
            if (s := inputs.service_calls.get(c.call_sid)) is not None
            and s.joined_s is not None
            and c.call_id in by_id
        ]
        report["scheduled_ideal"] = {
            "service_level": sched["service_level"],
            "asa_s": sched["asa_s"],
            "abandon_rate": sched["abandon_rate"],
            "extra_wait_p95_s": _pct(raw, 95),
            "extra_wait_max_s": max(raw, default=None),
            "join_shift_median_s": _pct(shift, 50),
            "join_shift_p95_s": _pct(shift, 95),
            "join_shift_max_s": max(shift, default=None),
        }
        report = _round(report)
    if per_call:
        report["calls"] = call_rows(inputs)
    rounded: dict[str, Any] = _round(report)
    return rounded


def _fmt(value: Any, kind: str = "") -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{100 * float(value):.1f} %"
    if kind == "s":
        return f"{float(value):.2f} s"
    return str(value)


def format_report(report: Mapping[str, Any]) -> str:
    """The plain-text report printed at the end of a run."""
    p = report["params"]
    live, ideal, erl = report["live"], report["ideal"], report["erlang_c"]
    lines = [
        f"hotline simulate: {p['calls_per_hour']:g} calls/h, handle {p['handle']}, "
        f"{p['agents']} agents"
        + (f" + {p['care_agents']} care" if p["care_agents"] else "")
        + f", target {p['target_s']:g} s, {p['duration_s']:g} s simulated at x{p['speedup']:g}"
        f" ({report['real_s']:.0f} s real), {p['workers']} service process(es), "
        f"seed {p['seed']}",
        "",
        f"{'':24}{'live':>12}{'ideal':>12}{'Erlang C':>12}",
    ]

    def row(name: str, key: str, kind: str, erl_value: Any = None) -> None:
        lines.append(
            f"{name:24}{_fmt(live.get(key), kind):>12}{_fmt(ideal.get(key), kind):>12}"
            f"{_fmt(erl_value, kind):>12}"
        )

    row("offered", "offered", "")
    row("answered", "answered", "")
    row("abandoned", "abandoned", "")
    row("service level", "service_level", "pct", erl.get("service_level"))
    row("ASA", "asa_s", "s", erl.get("asa_s"))
    row("abandonment rate", "abandon_rate", "pct")
    row("occupancy", "occupancy", "pct", erl.get("occupancy"))
    row("p95 wait (answered)", "p95_wait_s", "s")
    for prio, fig in report["by_priority"].items():
        lines.append(
            f"  {fig['label']} (priority {prio}, target {fig['target_s']:g} s): "
            f"SL {_fmt(fig['service_level'], 'pct')} (ideal "
            f"{_fmt(fig['ideal_service_level'], 'pct')}), ASA {_fmt(fig['asa_s'], 's')} "
            f"(ideal {_fmt(fig['ideal_asa_s'], 's')}), abandoned {fig['abandoned']}/"
            f"{fig['offered']}"
        )
    agreement = report["service_agreement"]
    service = report["service"]
    lines += [
        "",
        f"extra wait vs ideal (same sample path): median "
        f"{_fmt(report['extra_wait_median_s'], 's')}, p95 {_fmt(report['extra_wait_p95_s'], 's')}"
        f", max {_fmt(report['extra_wait_max_s'], 's')}",
        f"double assignments {report['double_assignments']}, lost calls "
        f"{report['lost_calls']}, carrier errors {report['errors']}"
        + (f" {report['error_codes']}" if report["error_codes"] else ""),
        f"service statistics: offered {service.get('offered')}, answered "
        f"{service.get('answered')}, abandoned {service.get('abandoned')}, SL "
        f"{_fmt(service.get('service_level'), 'pct')}, ASA {_fmt(service.get('asa_s'), 's')}; "
        f"call-for-call: {agreement['outcome_or_agent_mismatches']} outcome/agent mismatches, "
        f"{agreement['wait_mismatches']} waits off by more than "
        f"{agreement['wait_diff_tolerance_s']:g} s "
        f"(wait difference median {_fmt(agreement['wait_diff_median_s'], 's')}, max "
        f"{_fmt(agreement['wait_diff_max_abs_s'], 's')})",
    ]
    return "\n".join(lines)


def progress_line(
    *,
    simulated_s: float,
    duration_s: float,
    placed: int,
    total: int,
    finished: int,
    waiting: int,
    width: int = 30,
) -> str:
    """`[#########.....]  45 %  27.0/60.0 min  54/120 calls placed, 50 done, 3 waiting`."""
    frac = 0.0 if duration_s <= 0 else min(1.0, max(0.0, simulated_s / duration_s))
    if placed >= total and total:
        frac = max(frac, finished / total)
    filled = int(round(frac * width))
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {100 * frac:3.0f} %  "
        f"{simulated_s / 60:5.1f}/{duration_s / 60:.1f} min  {placed}/{total} calls placed, "
        f"{finished} done, {waiting} waiting"
    )
