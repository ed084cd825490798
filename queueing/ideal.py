"""The ideal dispatcher: the configured routing policy with zero latency, as a plain
discrete-event simulation over a workload sample path (pure, no I/O).

Policy (the same as the Redis router's):

- calls are served by priority (higher first), then longest waiting;
- among ready agents eligible for a call: agents holding the call's own skill before agents
  who only get it by overflow, then by strategy: the longest idle (default), the fewest calls
  taken (ties: longest idle), or the highest skill level (ties: longest idle);
- a call of the general queue needs the ``general`` skill; a VIP call needs the ``vip`` skill
  (the care team) and, once it has waited ``vip_overflow_s``, any agent with the ``general``
  skill will do as well (``0``: at once, i.e. one pool where VIPs go first; ``None``: never);
- once paired, the agent's phone rings for the call's ring time; the wait runs until the agent
  picks up (wait = answer time - arrival time). The agent is then busy for the handle time
  plus ``wrap_up_s`` and ready again afterwards;
- a caller hangs up after waiting their patience, in the queue or while the agent's phone is
  still ringing (the agent is then ready again at once). Either way: abandoned.

Outcomes per call and a summary by the definitions of :mod:`queueing.metrics`. Occupancy is
the agents' busy time (ringing, talking, wrap-up) within ``[0, duration]`` over
``agents * duration``. Calls that arrive before the end are followed until they are done.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from queueing.metrics import (
    DEFAULT_SHORT_ABANDON_S,
    ServiceSummary,
    summarize,
    summarize_by_priority,
)
from queueing.workload import Workload

__all__ = [
    "GENERAL",
    "VIP",
    "AgentStrategy",
    "ArrivalSnapshot",
    "CallOutcome",
    "IdealConfig",
    "IdealResult",
    "SimAgent",
    "agent_pool",
    "agents_by_id",
    "care_team",
    "run_ideal",
]

GENERAL = "general"
VIP = "vip"


class AgentStrategy(str, Enum):
    """How to choose among eligible ready agents."""

    LONGEST_IDLE = "longest_idle"
    FEWEST_CALLS = "fewest_calls"
    SKILL_LEVEL = "skill_level"


def _general_skills() -> Mapping[str, int]:
    return {GENERAL: 1}


@dataclass(frozen=True)
class SimAgent:
    """An agent: skills are queue name -> level (higher is better)."""

    agent_id: str
    skills: Mapping[str, int] = field(default_factory=_general_skills)
    team: str = GENERAL


def agent_pool(count: int, *, prefix: str = "agent", level: int = 1) -> tuple[SimAgent, ...]:
    """``count`` general agents named ``{prefix}{i}``."""
    return tuple(SimAgent(f"{prefix}{i}", {GENERAL: level}) for i in range(1, count + 1))


def care_team(
    count: int, *, prefix: str = "care", serves_general: bool = True
) -> tuple[SimAgent, ...]:
    """``count`` care-team agents with the VIP skill (and the general one, at a lower level,
    if ``serves_general``: they take general calls when no VIP is waiting)."""
    skills: dict[str, int] = {VIP: 2}
    if serves_general:
        skills[GENERAL] = 1
    return tuple(SimAgent(f"{prefix}{i}", dict(skills), team="care") for i in range(1, count + 1))


@dataclass(frozen=True)
class IdealConfig:
    agents: tuple[SimAgent, ...]
    target_s: float = 30.0
    short_abandon_s: float = DEFAULT_SHORT_ABANDON_S
    strategy: AgentStrategy = AgentStrategy.LONGEST_IDLE
    wrap_up_s: float = 0.0
    vip_overflow_s: float | None = 0.0

    def __post_init__(self) -> None:
        if not self.agents:
            raise ValueError("the ideal dispatcher needs at least one agent")
        ids = [a.agent_id for a in self.agents]
        if len(set(ids)) != len(ids):
            raise ValueError("agent ids must be unique")
        for name in ("target_s", "short_abandon_s", "wrap_up_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
        if self.vip_overflow_s is not None and not (
            math.isfinite(self.vip_overflow_s) and self.vip_overflow_s >= 0
        ):
            raise ValueError(f"vip_overflow_s must be >= 0 or None, got {self.vip_overflow_s!r}")


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """What happened to one call (satisfies :class:`queueing.metrics.CallRecord`)."""

    call_id: int
    arrival_s: float
    wait_s: float  # answered: pickup - arrival; abandoned: hang-up - arrival
    answered: bool
    agent_id: str | None  # who picked up; None when abandoned
    priority: int
    vip: bool
    handle_s: float  # talk + wrap-up; 0 when abandoned


@dataclass(frozen=True, slots=True)
class ArrivalSnapshot:
    """The live state a real system would see when a call joins (for EWT checks).

    ``position`` is 1-based in service order among waiting calls of the same queue (0 when
    an agent takes the call at once); ``busy_elapsed_s`` holds, for every busy agent eligible
    for the call, the time since its current call was picked up (negative while ringing);
    ``recent_handle_s`` the handle times (talk + wrap-up) of the latest finished calls.
    """

    time_s: float
    call_id: int
    position: int
    ready_agents: int
    busy_elapsed_s: tuple[float, ...]
    recent_handle_s: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class IdealResult:
    outcomes: tuple[CallOutcome, ...]
    summary: ServiceSummary
    by_priority: Mapping[int, ServiceSummary]
    busy_s: float
    staffed_s: float


_FREE, _ABANDON, _OVERFLOW = 0, 1, 2
_WAITING, _PAIRED, _GONE = 0, 1, 2


def run_ideal(
    workload: Workload,
    config: IdealConfig,
    *,
    observer: Callable[[ArrivalSnapshot], None] | None = None,
    recent_handles: int = 100,
) -> IdealResult:
    """Dispatch ``workload`` under ``config`` with zero latency and summarise.

    ``observer``, if given, is called at every arrival with an :class:`ArrivalSnapshot`
    (after the call has been queued or paired); it costs time, so leave it out otherwise.
    """
    calls = workload.calls
    agents = config.agents
    n_agents = len(agents)
    horizon = workload.spec.duration_s
    wrap = config.wrap_up_s
    overflow = config.vip_overflow_s
    strategy = config.strategy

    skills = [dict(a.skills) for a in agents]
    has_general = [GENERAL in s for s in skills]
    has_vip = [VIP in s for s in skills]
    vip_reachable = any(has_vip) or (overflow is not None and any(has_general))
    if any(c.vip for c in calls) and not vip_reachable:
        raise ValueError("VIP calls but no agent can ever take them (no vip skill, no overflow)")
    if any(not c.vip for c in calls) and not any(has_general):
        raise ValueError("general calls but no agent has the general skill")

    n_calls = len(calls)
    state = [_WAITING] * n_calls
    wait = [0.0] * n_calls
    answered = [False] * n_calls
    agent_of: list[int] = [-1] * n_calls
    handle = [0.0] * n_calls

    ready: dict[int, None] = {i: None for i in range(n_agents)}
    ready_since = [0.0] * n_agents
    taken = [0] * n_agents
    answer_at = [0.0] * n_agents  # of the agent's current call (for snapshots)
    busy_total = 0.0

    # waiting calls per queue, and VIP calls that general agents may take (overflowed)
    waiting: dict[str, list[tuple[int, float, int]]] = {GENERAL: [], VIP: []}
    overflowed: list[tuple[int, float, int]] = []
    events: list[tuple[float, int, int, int, float]] = []
    seq = 0
    recent: deque[float] = deque(maxlen=recent_handles)

    def pick_agent(call_idx: int, t: float, allow_overflow: bool) -> int:
        """Best ready agent for the call, or -1."""
        c = calls[call_idx]
        queue = VIP if c.vip else GENERAL
        best = -1
        best_key: tuple[float, ...] = ()
        for i in ready:
            s = skills[i]
            if queue in s:
                rank = 0
                level = s[queue]
            elif allow_overflow and has_general[i]:
                rank = 1
                level = s[GENERAL]
            else:
                continue
            if strategy is AgentStrategy.LONGEST_IDLE:
                key: tuple[float, ...] = (rank, ready_since[i], i)
            elif strategy is AgentStrategy.FEWEST_CALLS:
                key = (rank, taken[i], ready_since[i], i)
            else:
                key = (rank, -level, ready_since[i], i)
            if best < 0 or key < best_key:
                best, best_key = i, key
        return best

    def assign(call_idx: int, agent_idx: int, t: float) -> None:
        nonlocal seq, busy_total
        c = calls[call_idx]
        state[call_idx] = _PAIRED
        del ready[agent_idx]
        answer = t + c.ring_s
        gives_up = c.arrival_s + c.patience_s
        if gives_up < answer:  # hangs up while the agent's phone rings
            wait[call_idx] = c.patience_s
            free = gives_up
            done = -1.0
        else:
            wait[call_idx] = answer - c.arrival_s
            answered[call_idx] = True
            agent_of[call_idx] = agent_idx
            done = c.handle_s + wrap
            handle[call_idx] = done
            taken[agent_idx] += 1
            free = answer + done
        answer_at[agent_idx] = answer
        busy_total += max(0.0, min(free, horizon) - max(t, 0.0))
        seq += 1
        heapq.heappush(events, (free, seq, _FREE, agent_idx, done))

    def head(heap: list[tuple[int, float, int]]) -> tuple[int, float, int] | None:
        while heap and state[heap[0][2]] != _WAITING:
            heapq.heappop(heap)
        return heap[0] if heap else None

    def agent_ready(agent_idx: int, t: float) -> None:
        s = skills[agent_idx]
        best: tuple[int, float, int] | None = None
        for queue in (VIP, GENERAL):
            if queue in s:
                h = head(waiting[queue])
                if h is not None and (best is None or h < best):
                    best = h
        if has_general[agent_idx] and not has_vip[agent_idx]:
            h = head(overflowed)
            if h is not None and (best is None or h < best):
                best = h
        if best is None:
            ready[agent_idx] = None
            ready_since[agent_idx] = t
            return
        call_idx = best[2]
        ready[agent_idx] = None  # assign() takes it out again
        assign(call_idx, agent_idx, t)

    def snapshot(call_idx: int, t: float) -> ArrivalSnapshot:
        c = calls[call_idx]
        queue = VIP if c.vip else GENERAL
        position = 0
        if state[call_idx] == _WAITING:
            key = (-c.priority, c.arrival_s, call_idx)
            position = 1 + sum(1 for e in waiting[queue] if state[e[2]] == _WAITING and e < key)
        eligible = [i for i in range(n_agents) if queue in skills[i]]
        n_ready = sum(1 for i in eligible if i in ready)
        busy = tuple(t - answer_at[i] for i in eligible if i not in ready)
        return ArrivalSnapshot(t, c.call_id, position, n_ready, busy, tuple(recent))

    next_call = 0
    inf = math.inf
    while True:
        t_arrival = calls[next_call].arrival_s if next_call < n_calls else inf
        if events and events[0][0] <= t_arrival:
            t, _, kind, idx, value = heapq.heappop(events)
            if kind == _FREE:
                if value >= 0:
                    recent.append(value)
                agent_ready(idx, t)
            elif kind == _ABANDON:
                if state[idx] == _WAITING:
                    state[idx] = _GONE
                    wait[idx] = t - calls[idx].arrival_s
            elif state[idx] == _WAITING:  # _OVERFLOW: general agents may take it now
                heapq.heappush(overflowed, (-calls[idx].priority, calls[idx].arrival_s, idx))
                i = pick_agent(idx, t, True)
                if i >= 0:
                    assign(idx, i, t)
            continue
        if t_arrival == inf:
            break
        idx = next_call
        next_call += 1
        c = calls[idx]
        t = t_arrival
        immediate_overflow = c.vip and overflow == 0.0
        i = pick_agent(idx, t, immediate_overflow or not c.vip)
        if i >= 0:
            assign(idx, i, t)
        else:
            entry = (-c.priority, t, idx)
            queue = VIP if c.vip else GENERAL
            heapq.heappush(waiting[queue], entry)
            if c.vip and overflow is not None:
                if immediate_overflow:
                    heapq.heappush(overflowed, entry)
                else:
                    seq += 1
                    heapq.heappush(events, (t + overflow, seq, _OVERFLOW, idx, 0.0))
            if c.patience_s != inf:
                seq += 1
                heapq.heappush(events, (t + c.patience_s, seq, _ABANDON, idx, 0.0))
        if observer is not None:
            observer(snapshot(idx, t))

    outcomes = tuple(
        CallOutcome(
            call_id=c.call_id,
            arrival_s=c.arrival_s,
            wait_s=wait[k],
            answered=answered[k],
            agent_id=agents[agent_of[k]].agent_id if answered[k] else None,
            priority=c.priority,
            vip=c.vip,
            handle_s=handle[k],
        )
        for k, c in enumerate(calls)
    )
    staffed = n_agents * horizon
    return IdealResult(
        outcomes=outcomes,
        summary=summarize(
            outcomes,
            target_s=config.target_s,
            short_abandon_s=config.short_abandon_s,
            busy_s=busy_total,
            staffed_s=staffed,
        ),
        by_priority=summarize_by_priority(
            outcomes, target_s=config.target_s, short_abandon_s=config.short_abandon_s
        ),
        busy_s=busy_total,
        staffed_s=staffed,
    )


def agents_by_id(outcomes: Iterable[CallOutcome]) -> Mapping[str, int]:
    """Answered calls per agent id (for strategy checks and reports)."""
    counts: dict[str, int] = {}
    for o in outcomes:
        if o.agent_id is not None:
            counts[o.agent_id] = counts.get(o.agent_id, 0) + 1
    return counts
