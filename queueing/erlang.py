"""Erlang B and Erlang C: waiting probability, service level, ASA, occupancy and staffing.

Pure functions, no I/O. Conventions (see ``DESIGN.md``, "Definitions"):

- ``traffic`` is the offered load A = lambda * h in erlangs, ``agents`` is N;
- P(wait) = C(N, A); SL(T) = 1 - C(N, A) * exp(-(N - A) * T / h);
  ASA = C(N, A) * h / (N - A); occupancy = A / N.

Erlang B is computed by the recursion B(0) = 1, B(n) = A B(n-1) / (n + A B(n-1)), which
never forms a factorial or a power, so it is stable for thousands of agents; Erlang C is
derived from it: C = N B / (N - A (1 - B)). Erlang C needs N > A (otherwise the queue
grows without bound); such input is rejected with a ``ValueError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "ErlangFigures",
    "agents_needed",
    "asa",
    "erlang_b",
    "erlang_c",
    "evaluate",
    "occupancy",
    "offered_load",
    "service_level",
]

# Hard ceiling for the staffing search, far above any real queue.
MAX_AGENTS = 1_000_000


def _check_agents(agents: int) -> None:
    if isinstance(agents, bool) or not isinstance(agents, int):
        raise ValueError(f"agents must be an int, got {agents!r}")
    if agents < 1:
        raise ValueError(f"agents must be at least 1, got {agents}")


def _check_nonnegative(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")


def _check_positive(name: str, value: float) -> None:
    _check_nonnegative(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _check_stable(agents: int, traffic: float) -> None:
    _check_agents(agents)
    _check_nonnegative("traffic", traffic)
    if agents <= traffic:
        raise ValueError(
            f"Erlang C needs more agents than erlangs of traffic (N > A); "
            f"got N={agents}, A={traffic:.6g}: the queue would grow without bound"
        )


def offered_load(calls_per_hour: float, aht_s: float) -> float:
    """Offered traffic A in erlangs for an arrival rate (calls/hour) and AHT (seconds)."""
    _check_nonnegative("calls_per_hour", calls_per_hour)
    _check_positive("aht_s", aht_s)
    return calls_per_hour * aht_s / 3600.0


def erlang_b(agents: int, traffic: float) -> float:
    """Blocking probability B(N, A) of a loss system, by the stable recursion."""
    _check_agents(agents)
    _check_nonnegative("traffic", traffic)
    b = 1.0
    for n in range(1, agents + 1):
        ab = traffic * b
        b = ab / (n + ab)
    return b


def _c_from_b(agents: int, traffic: float, b: float) -> float:
    return agents * b / (agents - traffic * (1.0 - b))


def erlang_c(agents: int, traffic: float) -> float:
    """P(wait) = C(N, A): the probability that a call has to queue. Needs N > A."""
    _check_stable(agents, traffic)
    return _c_from_b(agents, traffic, erlang_b(agents, traffic))


def service_level(agents: int, traffic: float, aht_s: float, target_s: float) -> float:
    """SL(T) = 1 - C(N, A) * exp(-(N - A) * T / h): share of calls answered within T."""
    _check_positive("aht_s", aht_s)
    _check_nonnegative("target_s", target_s)
    c = erlang_c(agents, traffic)
    return 1.0 - c * math.exp(-(agents - traffic) * target_s / aht_s)


def asa(agents: int, traffic: float, aht_s: float) -> float:
    """Average speed of answer in seconds: C(N, A) * h / (N - A)."""
    _check_positive("aht_s", aht_s)
    return erlang_c(agents, traffic) * aht_s / (agents - traffic)


def occupancy(agents: int, traffic: float) -> float:
    """Share of agent time spent handling calls: A / N. Needs N > A."""
    _check_stable(agents, traffic)
    return traffic / agents


@dataclass(frozen=True, slots=True)
class ErlangFigures:
    """Erlang C figures for one staffing level."""

    agents: int
    traffic_erlangs: float
    p_wait: float
    service_level: float
    asa_s: float
    occupancy: float


def _figures(agents: int, traffic: float, aht_s: float, target_s: float, b: float) -> ErlangFigures:
    if traffic == 0:
        return ErlangFigures(agents, 0.0, 0.0, 1.0, 0.0, 0.0)
    c = _c_from_b(agents, traffic, b)
    return ErlangFigures(
        agents=agents,
        traffic_erlangs=traffic,
        p_wait=c,
        service_level=1.0 - c * math.exp(-(agents - traffic) * target_s / aht_s),
        asa_s=c * aht_s / (agents - traffic),
        occupancy=traffic / agents,
    )


def evaluate(calls_per_hour: float, aht_s: float, agents: int, target_s: float) -> ErlangFigures:
    """All Erlang C figures for ``agents`` at an arrival rate, AHT and target answer time."""
    traffic = offered_load(calls_per_hour, aht_s)
    _check_nonnegative("target_s", target_s)
    _check_stable(agents, traffic)
    return _figures(agents, traffic, aht_s, target_s, erlang_b(agents, traffic))


def agents_needed(
    calls_per_hour: float,
    aht_s: float,
    *,
    target_s: float,
    service_level_goal: float,
    max_asa_s: float | None = None,
    max_occupancy: float | None = None,
) -> ErlangFigures:
    """Staffing advice: the smallest N > A with SL(target_s) >= ``service_level_goal``
    (and, if given, ASA <= ``max_asa_s`` and occupancy <= ``max_occupancy``).

    Zero traffic needs zero agents (the figures say so: SL 1, ASA 0). The search runs the
    Erlang B recursion once upwards, so it costs O(N) however large N is.
    """
    traffic = offered_load(calls_per_hour, aht_s)
    _check_nonnegative("target_s", target_s)
    _check_nonnegative("service_level_goal", service_level_goal)
    if service_level_goal >= 1.0:
        raise ValueError(
            f"service_level_goal must be below 1 (no finite staffing answers every call "
            f"at once), got {service_level_goal!r}"
        )
    if max_asa_s is not None:
        _check_positive("max_asa_s", max_asa_s)
    if max_occupancy is not None:
        _check_positive("max_occupancy", max_occupancy)
        if max_occupancy > 1.0:
            raise ValueError(f"max_occupancy must be at most 1, got {max_occupancy!r}")
    if traffic == 0:
        return ErlangFigures(0, 0.0, 0.0, 1.0, 0.0, 0.0)
    b = 1.0
    for n in range(1, MAX_AGENTS + 1):
        ab = traffic * b
        b = ab / (n + ab)
        if n <= traffic:
            continue
        fig = _figures(n, traffic, aht_s, target_s, b)
        if fig.service_level < service_level_goal:
            continue
        if max_asa_s is not None and fig.asa_s > max_asa_s:
            continue
        if max_occupancy is not None and fig.occupancy > max_occupancy:
            continue
        return fig
    raise ValueError(f"no staffing up to {MAX_AGENTS} agents meets the goal")  # pragma: no cover
