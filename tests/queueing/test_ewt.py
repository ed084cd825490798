"""Estimated wait time: a table of known answers, properties, and the ideal simulation."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from queueing.ewt import estimate_wait, estimate_waits, expected_first_release
from queueing.ideal import ArrivalSnapshot, IdealConfig, agent_pool, run_ideal
from queueing.workload import (
    Distribution,
    Exponential,
    Fixed,
    Lognormal,
    Uniform,
    WorkloadSpec,
    generate,
)

FIXED_180 = [180.0] * 20
# 1,000 quantiles of an exponential with mean 180 s: an "ideal" recent history
EXP_180 = [-180.0 * math.log(1 - (j + 0.5) / 1000) for j in range(1000)]


@pytest.mark.parametrize(
    ("position", "ready", "busy", "recent", "ring", "expected", "rel"),
    [
        # an agent is ready for the caller: only the ring
        (1, 1, [], FIXED_180, 0.0, 0.0, 0),
        (2, 2, [30.0], FIXED_180, 5.0, 5.0, 0),
        # fixed handle times: agents free exactly at 180 - elapsed, then every 180 s
        (1, 0, [0.0, 60.0, 120.0, 170.0], FIXED_180, 0.0, 10.0, 1e-9),
        (2, 0, [0.0, 60.0, 120.0, 170.0], FIXED_180, 0.0, 60.0, 1e-9),
        (3, 0, [0.0, 60.0, 120.0, 170.0], FIXED_180, 0.0, 120.0, 1e-9),
        (4, 0, [0.0, 60.0, 120.0, 170.0], FIXED_180, 0.0, 180.0, 1e-9),
        (5, 0, [0.0, 60.0, 120.0, 170.0], FIXED_180, 0.0, 190.0, 1e-9),
        (9, 0, [0.0, 60.0, 120.0, 170.0], FIXED_180, 0.0, 370.0, 1e-9),
        # one ready agent is taken by the caller ahead; ring time is part of the wait
        (2, 1, [170.0], FIXED_180, 0.0, 10.0, 1e-9),
        (3, 1, [170.0], FIXED_180, 4.0, 4.0 + 184.0, 1e-9),
        # an agent still ringing (elapsed -3) frees after 3 + 180
        (1, 0, [-3.0], FIXED_180, 0.0, 183.0, 1e-9),
        # exponential handle times: memoryless, EWT ~ k h / n whatever the elapsed times
        (1, 0, [0.0, 100.0, 200.0, 250.0], EXP_180, 0.0, 45.0, 0.05),
        (4, 0, [0.0, 100.0, 200.0, 250.0], EXP_180, 0.0, 180.0, 0.05),
        (12, 0, [10.0] * 8, EXP_180, 0.0, 270.0, 0.05),
        (40, 0, [10.0] * 8, EXP_180, 0.0, 900.0, 0.05),
        # an agent past every recent handle time gets an exponential remainder (mean h)
        (1, 0, [500.0], FIXED_180, 0.0, 180.0, 1e-9),
    ],
)
def test_table(
    position: int,
    ready: int,
    busy: list[float],
    recent: list[float],
    ring: float,
    expected: float,
    rel: float,
) -> None:
    got = estimate_wait(
        position, ready_agents=ready, busy_elapsed_s=busy, recent_handle_s=recent, mean_ring_s=ring
    )
    assert got == pytest.approx(expected, rel=rel, abs=1e-9)


def test_prior_handle_time_when_no_history() -> None:
    waits = estimate_waits(
        3, ready_agents=0, busy_elapsed_s=[0.0, 60.0], recent_handle_s=[], prior_handle_s=120.0
    )
    assert waits == pytest.approx([60.0, 120.0, 180.0])


def test_higher_priority_arrivals_stretch_the_wait() -> None:
    base = estimate_wait(1, ready_agents=0, busy_elapsed_s=[0.0], recent_handle_s=FIXED_180)
    # VIPs arriving every 360 s take half of the one agent's capacity: twice the wait
    stretched = estimate_wait(
        1,
        ready_agents=0,
        busy_elapsed_s=[0.0],
        recent_handle_s=FIXED_180,
        higher_priority_rate_per_s=1 / 360,
    )
    assert (base, stretched) == pytest.approx((180.0, 360.0))


def test_no_capacity_is_infinite() -> None:
    assert estimate_wait(1, ready_agents=0, busy_elapsed_s=[], recent_handle_s=FIXED_180) == (
        math.inf
    )
    saturated = estimate_waits(
        3,
        ready_agents=1,
        busy_elapsed_s=[0.0],
        recent_handle_s=FIXED_180,
        higher_priority_rate_per_s=2 / 180,
    )
    assert saturated == [0.0, math.inf, math.inf]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"position": 0},
        {"position": 2.0},
        {"ready_agents": -1},
        {"busy_elapsed_s": [math.nan]},
        {"recent_handle_s": [-1.0]},
        {"recent_handle_s": [], "prior_handle_s": None},
        {"recent_handle_s": [0.0, 0.0]},
        {"mean_ring_s": -1.0},
        {"higher_priority_rate_per_s": math.inf},
    ],
)
def test_rejects_bad_input(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {
        "position": 1,
        "ready_agents": 0,
        "busy_elapsed_s": [10.0],
        "recent_handle_s": FIXED_180,
    }
    args.update(kwargs)
    with pytest.raises(ValueError):
        estimate_wait(**args)  # type: ignore[arg-type]


def test_first_release_exact() -> None:
    # two agents at elapsed 0 with handle times {60, 120}: min residual is 60 w.p. 3/4,
    # 120 w.p. 1/4 -> 75
    assert expected_first_release([0.0, 0.0], [60.0, 120.0], 90.0) == pytest.approx(75.0)
    assert expected_first_release([], [60.0], 60.0) == math.inf


elapsed_st = st.lists(st.floats(-10, 600), min_size=1, max_size=12)
recent_st = st.lists(st.floats(1, 900), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(busy=elapsed_st, recent=recent_st, ready=st.integers(0, 3))
def test_nondecreasing_in_position_and_deterministic(
    busy: list[float], recent: list[float], ready: int
) -> None:
    kw = {"ready_agents": ready, "busy_elapsed_s": busy, "recent_handle_s": recent}
    waits = estimate_waits(15, **kw)  # type: ignore[arg-type]
    assert all(w >= 0 for w in waits)
    assert all(b >= a - 1e-9 for a, b in zip(waits, waits[1:], strict=False))
    assert waits == estimate_waits(15, **kw)  # type: ignore[arg-type]
    assert estimate_wait(7, **kw) == waits[6]  # type: ignore[arg-type]


def _ewt_vs_ideal(handle: Distribution, ring: Distribution, seed: int) -> tuple[int, float]:
    """Relative mean error (estimate - actual) / mean actual wait over the queued callers of
    40 h at 120 calls/h, 8 agents; estimates from the state the router would see."""
    w = generate(
        WorkloadSpec(calls_per_hour=120, duration_s=40 * 3600, handle=handle, ring=ring), seed
    )
    snaps: list[ArrivalSnapshot] = []

    def observe(s: ArrivalSnapshot) -> None:
        if s.position > 0 and s.recent_handle_s:
            snaps.append(s)

    r = run_ideal(w, IdealConfig(agent_pool(8)), observer=observe)
    est: Sequence[float] = [
        estimate_wait(
            s.position,
            ready_agents=s.ready_agents,
            busy_elapsed_s=s.busy_elapsed_s,
            recent_handle_s=s.recent_handle_s,
            mean_ring_s=ring.mean,
        )
        for s in snaps
    ]
    actual = [r.outcomes[s.call_id].wait_s for s in snaps]
    error = statistics.fmean(e - a for e, a in zip(est, actual, strict=True))
    return len(snaps), error / statistics.fmean(actual)


@pytest.mark.parametrize(
    ("handle", "ring", "seed", "tolerance"),
    [
        # Measured (estimate - actual) / mean actual wait, 40 h runs, 100 recent handle
        # times: exponential, seeds 0..7: -0.6 %..+6.7 % (mean +3.5 %); lognormal(180, 60),
        # seeds 0..7: -1.5 %..+3.8 % (mean +1.4 %); lognormal with ring uniform(2, 8), seeds
        # 0..3: -1.0 %..+2.9 %; fixed handle times: exact. The slight overestimate comes from
        # judging by 100 recent calls (an empirical distribution overstates the minimum of
        # several draws; long queues follow long calls); with 300 recent calls the exponential
        # mean is +2.0 %. Tolerance: 8 % of the mean wait (0.1 % for fixed handle times).
        (Exponential(180), Fixed(0), 0, 0.08),
        (Lognormal(180, 60), Fixed(0), 1, 0.08),
        (Lognormal(180, 60), Uniform(2, 8), 2, 0.08),
        (Fixed(180), Fixed(0), 3, 0.001),
    ],
)
def test_unbiased_against_ideal_simulation(
    handle: Distribution, ring: Distribution, seed: int, tolerance: float
) -> None:
    n, relative_bias = _ewt_vs_ideal(handle, ring, seed)
    assert n > 1000
    assert abs(relative_bias) <= tolerance


def test_the_latin_hypercube_columns_are_a_bounded_cache() -> None:
    """Every staffing level adds ~3 x agents + 8 columns: the cache must not keep them all."""
    from queueing.ewt import LHS_CACHE_MAX, _lhs_column

    _lhs_column.cache_clear()
    first = _lhs_column(200, 0)
    for agents in range(1, 120):
        runs = max(32, min(200, 50_000 // (3 * agents + 8)))
        for draw in range(3 * agents + 8):
            _lhs_column(runs, draw)
    info = _lhs_column.cache_info()
    assert info.maxsize == LHS_CACHE_MAX and info.currsize <= LHS_CACHE_MAX
    assert _lhs_column(200, 0) == first  # dropped and drawn again: the same numbers
