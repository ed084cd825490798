"""The ideal dispatcher: hand-made sample paths with known answers, and Erlang C."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import pytest

from queueing.erlang import evaluate
from queueing.ideal import (
    AgentStrategy,
    CallOutcome,
    IdealConfig,
    SimAgent,
    agent_pool,
    agents_by_id,
    care_team,
    run_ideal,
)
from queueing.workload import Call, Exponential, Workload, WorkloadSpec, generate

INF = math.inf


def path(
    *calls: tuple[float, float],
    ring: Sequence[float] | None = None,
    patience: Sequence[float] | None = None,
    vip: Sequence[bool] | None = None,
) -> Workload:
    """A workload from (arrival, handle) pairs, with per-call ring, patience and VIP flags."""
    n = len(calls)
    rings = list(ring) if ring is not None else [0.0] * n
    patiences = list(patience) if patience is not None else [INF] * n
    vips = list(vip) if vip is not None else [False] * n
    return Workload(
        spec=WorkloadSpec(calls_per_hour=0, duration_s=1000),
        seed=0,
        calls=tuple(
            Call(i, a, h, rings[i], patiences[i], vips[i], 1 if vips[i] else 0)
            for i, (a, h) in enumerate(calls)
        ),
    )


def waits(outcomes: Sequence[CallOutcome]) -> list[float]:
    return [round(o.wait_s, 9) for o in outcomes]


def test_fifo_one_agent() -> None:
    r = run_ideal(path((0, 10), (1, 10), (2, 10)), IdealConfig(agent_pool(1)))
    assert waits(r.outcomes) == [0, 9, 18]
    assert all(o.answered and o.agent_id == "agent1" for o in r.outcomes)
    assert r.summary.asa_s == pytest.approx(9.0)
    assert r.busy_s == pytest.approx(30.0) and r.staffed_s == 1000.0
    assert r.summary.occupancy == pytest.approx(0.03)


def test_vip_served_first() -> None:
    # agent busy until 10; a normal call waits from 1, a VIP joins at 2 and goes first
    w = path((0, 10), (1, 5), (2, 5), vip=[False, False, True])
    r = run_ideal(w, IdealConfig(agent_pool(1)))
    assert waits(r.outcomes) == [0, 14, 8]
    assert r.by_priority[1].asa_s == pytest.approx(8.0)
    assert r.by_priority[0].asa_s == pytest.approx(7.0)


def test_priority_then_longest_waiting() -> None:
    w = path((0, 10), (1, 1), (2, 1), (3, 1), (4, 1), vip=[False, True, False, True, False])
    r = run_ideal(w, IdealConfig(agent_pool(1)))
    order = sorted(r.outcomes[1:], key=lambda o: o.arrival_s + o.wait_s)
    assert [o.call_id for o in order] == [1, 3, 2, 4]


def test_ring_time_counts_as_wait() -> None:
    w = path((0, 10), (1, 10), ring=[3, 3])
    r = run_ideal(w, IdealConfig(agent_pool(1)))
    # call 0 answered at 3, agent free at 13; call 1 paired at 13, answered at 16
    assert waits(r.outcomes) == [3, 15]
    assert r.summary.aht_s == pytest.approx(10.0)  # ring is wait, not handle
    assert r.busy_s == pytest.approx(26.0)


def test_wrap_up_delays_next_call_and_counts_in_aht() -> None:
    r = run_ideal(path((0, 10), (1, 10)), IdealConfig(agent_pool(1), wrap_up_s=5))
    assert waits(r.outcomes) == [0, 14]
    assert r.summary.aht_s == pytest.approx(15.0)


def test_abandonment_by_definition() -> None:
    # one agent busy until 100; callers with patience 3 (short), 20 and 40 give up
    w = path((0, 100), (1, 5), (2, 5), (3, 5), (4, 5), patience=[INF, 3, 20, 40, INF])
    r = run_ideal(w, IdealConfig(agent_pool(1), target_s=30))
    outcome = {o.call_id: o for o in r.outcomes}
    assert [outcome[i].answered for i in range(5)] == [True, False, False, False, True]
    assert [outcome[i].wait_s for i in (1, 2, 3)] == pytest.approx([3, 20, 40])
    assert outcome[4].wait_s == pytest.approx(96)
    s = r.summary
    assert (s.offered, s.answered, s.abandoned, s.short_abandons) == (5, 2, 3, 1)
    assert s.abandoned_after_target == 1  # the 40 s one; 20 s gave up before T
    assert s.service_level == pytest.approx(1 / 3)  # call 0 within T of {0, 4, 3}
    assert s.abandon_rate == pytest.approx(3 / 5)


def test_short_abandon_threshold_is_configurable() -> None:
    w = path((0, 100), (1, 5), patience=[INF, 8])
    default = run_ideal(w, IdealConfig(agent_pool(1), target_s=5))
    wider = run_ideal(w, IdealConfig(agent_pool(1), target_s=5, short_abandon_s=10))
    assert default.summary.short_abandons == 0 and default.summary.service_level == 0.5
    assert wider.summary.short_abandons == 1 and wider.summary.service_level == 1.0


def test_hang_up_while_ringing_frees_the_agent() -> None:
    w = path((0, 10), (1, 10), ring=[8, 0], patience=[4, INF])
    r = run_ideal(w, IdealConfig(agent_pool(1)))
    first, second = r.outcomes
    assert not first.answered and first.wait_s == pytest.approx(4) and first.agent_id is None
    assert second.answered and second.wait_s == pytest.approx(3)


def test_vip_overflow_after_set_wait() -> None:
    agents = care_team(1, serves_general=False) + agent_pool(1)
    # the care agent is busy until 100; a VIP joins at 1 while the general agent idles
    w = path((0, 100), (1, 10), vip=[True, True])
    after_20 = run_ideal(w, IdealConfig(agents, vip_overflow_s=20))
    assert after_20.outcomes[1].wait_s == pytest.approx(20)
    assert after_20.outcomes[1].agent_id == "agent1"
    never = run_ideal(w, IdealConfig(agents, vip_overflow_s=None))
    assert never.outcomes[1].wait_s == pytest.approx(99)
    assert never.outcomes[1].agent_id == "care1"
    at_once = run_ideal(w, IdealConfig(agents, vip_overflow_s=0))
    assert at_once.outcomes[1].wait_s == 0 and at_once.outcomes[1].agent_id == "agent1"


def test_overflowed_vip_goes_before_general_calls() -> None:
    agents = care_team(1, serves_general=False) + agent_pool(1)
    # both agents busy; a general call waits from 2, a VIP from 3 overflows at 8; the general
    # agent frees at 50 and takes the overflowed VIP first
    w = path((0, 100), (0, 50), (2, 5), (3, 5), vip=[True, False, False, True])
    r = run_ideal(w, IdealConfig(agents, vip_overflow_s=5))
    assert r.outcomes[3].agent_id == "agent1" and r.outcomes[3].wait_s == pytest.approx(47)
    assert r.outcomes[2].wait_s == pytest.approx(53)


def test_care_team_takes_vips_first() -> None:
    agents = agent_pool(1) + care_team(1)
    w = path((0, 10), (20, 10), vip=[True, False])
    r = run_ideal(w, IdealConfig(agents, vip_overflow_s=0))
    # the VIP goes to the care agent although the general agent has been idle as long
    assert r.outcomes[0].agent_id == "care1"
    # a care agent that serves general calls takes them when no VIP waits (longest idle)
    assert r.outcomes[1].agent_id == "agent1"


def _strategy_path() -> Workload:
    # a1 takes calls 0 and 2 (idle since 3); a2 takes call 1 (busy until 20.5); at 30 the
    # longest idle is a1, the one with the fewest calls is a2
    return path((0, 1), (0.5, 20), (2, 1), (30, 1))


@pytest.mark.parametrize(
    ("strategy", "agents", "expected"),
    [
        (AgentStrategy.LONGEST_IDLE, agent_pool(2), "agent1"),
        (AgentStrategy.FEWEST_CALLS, agent_pool(2), "agent2"),
        (
            AgentStrategy.SKILL_LEVEL,
            (SimAgent("agent1", {"general": 1}), SimAgent("agent2", {"general": 3})),
            "agent2",
        ),
        (
            AgentStrategy.SKILL_LEVEL,
            (SimAgent("agent1", {"general": 5}), SimAgent("agent2", {"general": 3})),
            "agent1",
        ),
    ],
)
def test_agent_strategies(
    strategy: AgentStrategy, agents: tuple[SimAgent, ...], expected: str
) -> None:
    r = run_ideal(_strategy_path(), IdealConfig(agents, strategy=strategy))
    assert r.outcomes[3].agent_id == expected


def test_strategies_spread_calls() -> None:
    w = generate(WorkloadSpec(calls_per_hour=60, duration_s=50 * 3600), seed=2)
    idle = agents_by_id(run_ideal(w, IdealConfig(agent_pool(4))).outcomes)
    fewest = agents_by_id(
        run_ideal(w, IdealConfig(agent_pool(4), strategy=AgentStrategy.FEWEST_CALLS)).outcomes
    )
    assert len(idle) == len(fewest) == 4
    assert max(idle.values()) / min(idle.values()) < 1.25
    # fewest calls evens out the counts much more tightly than longest idle
    assert max(fewest.values()) - min(fewest.values()) <= 0.02 * sum(fewest.values()) / 4
    assert max(fewest.values()) - min(fewest.values()) < max(idle.values()) - min(idle.values())


def test_deterministic_for_a_seed() -> None:
    spec = WorkloadSpec(
        calls_per_hour=150, duration_s=5 * 3600, patience=Exponential(60), vip_share=0.2
    )
    config = IdealConfig(care_team(2) + agent_pool(6), vip_overflow_s=15, wrap_up_s=10)
    a = run_ideal(generate(spec, 9), config)
    b = run_ideal(generate(spec, 9), config)
    assert a == b
    assert a.outcomes != run_ideal(generate(spec, 10), config).outcomes


def test_rejects_unservable_config() -> None:
    w = path((0, 1), vip=[True])
    with pytest.raises(ValueError, match="VIP"):
        run_ideal(w, IdealConfig(agent_pool(1), vip_overflow_s=None))
    with pytest.raises(ValueError, match="general"):
        run_ideal(path((0, 1)), IdealConfig(care_team(1, serves_general=False)))
    with pytest.raises(ValueError):
        IdealConfig(())
    with pytest.raises(ValueError):
        IdealConfig(agent_pool(1) + agent_pool(1))
    with pytest.raises(ValueError):
        IdealConfig(agent_pool(1), vip_overflow_s=-1)


def test_matches_erlang_c_over_500_hours() -> None:
    """Acceptance: one FIFO queue, 120 calls/h, AHT 180 s exponential, 8 agents, no
    abandonment, T = 30 s, 500 simulated hours: SL within 1 point, ASA within 5 %.

    Measured over seeds 0..39 (one 500 h run each) against Erlang C at the nominal load:
    SL error mean +0.17, sd 0.93 points; ASA error mean -1.4 %, sd 5.9 %. A single run of
    500 h meets the 5 % ASA bar in about two runs out of three, so this pins seed 0 (the
    first tried), and ``test_no_bias_against_erlang_c`` checks the average.
    """
    started = time.perf_counter()
    w = generate(WorkloadSpec(calls_per_hour=120, duration_s=500 * 3600), seed=0)
    r = run_ideal(w, IdealConfig(agent_pool(8), target_s=30))
    elapsed = time.perf_counter() - started
    erlang = evaluate(calls_per_hour=120, aht_s=180, agents=8, target_s=30)
    s = r.summary
    assert s.offered > 59_000 and s.abandoned == 0
    assert s.service_level is not None and s.asa_s is not None and s.occupancy is not None
    assert abs(s.service_level - erlang.service_level) <= 0.01
    assert abs(s.asa_s / erlang.asa_s - 1) <= 0.05
    assert abs(s.occupancy - erlang.occupancy) <= 0.01
    assert elapsed < 10.0


def test_no_bias_against_erlang_c() -> None:
    # 8 runs x 500 h, each compared with Erlang C at its own realised arrival rate and AHT
    # (which removes the noise of the draw of the load): mean SL error within 0.5 point,
    # mean ASA error within 3 %.
    sl_err: list[float] = []
    asa_err: list[float] = []
    for seed in range(1, 9):
        w = generate(WorkloadSpec(calls_per_hour=120, duration_s=500 * 3600), seed=seed)
        s = run_ideal(w, IdealConfig(agent_pool(8), target_s=30)).summary
        assert s.service_level is not None and s.asa_s is not None and s.aht_s is not None
        erlang = evaluate(s.offered / 500, s.aht_s, 8, 30)
        sl_err.append(s.service_level - erlang.service_level)
        asa_err.append(s.asa_s / erlang.asa_s - 1)
    assert abs(sum(sl_err) / len(sl_err)) <= 0.005
    assert abs(sum(asa_err) / len(asa_err)) <= 0.03


def test_vip_priority_improves_vip_service() -> None:
    w = generate(WorkloadSpec(calls_per_hour=120, duration_s=100 * 3600, vip_share=0.2), seed=4)
    r = run_ideal(w, IdealConfig(agent_pool(8)))
    vip, general = r.by_priority[1], r.by_priority[0]
    assert vip.service_level is not None and general.service_level is not None
    assert vip.service_level > general.service_level + 0.1
    assert vip.asa_s is not None and general.asa_s is not None and vip.asa_s < general.asa_s / 3


def _erlang_a_abandonment(lam: float, mu: float, theta: float, agents: int) -> float:
    """Share of callers who abandon in M/M/N+M (Erlang A), from its birth-death chain."""
    weights = [1.0]
    for n in range(1, 2000):
        weights.append(weights[-1] * lam / (min(n, agents) * mu + max(n - agents, 0) * theta))
    total = sum(weights)
    queued = sum(w * (n - agents) for n, w in enumerate(weights) if n > agents)
    return queued / total * theta / lam


def test_abandonment_matches_erlang_a() -> None:
    # exponential patience (mean 60 s), 120 calls/h, AHT 180 s, 8 agents: Erlang A gives
    # 7.71 % abandoned; runs of 200 h (seeds 0..5) measured 7.2 %..8.2 %; tolerance 1 point
    expected = _erlang_a_abandonment(1 / 30, 1 / 180, 1 / 60, 8)
    assert expected == pytest.approx(0.0771, abs=1e-4)
    spec = WorkloadSpec(calls_per_hour=120, duration_s=200 * 3600, patience=Exponential(60))
    s = run_ideal(generate(spec, 0), IdealConfig(agent_pool(8))).summary
    assert s.abandon_rate is not None
    assert abs(s.abandon_rate - expected) <= 0.01
    assert s.short_abandons > 0 and s.answered + s.abandoned == s.offered
