"""The pure parts of `hotline simulate`: parameters, staffing, scaling, report figures."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from config.loader import HotlineConfig, load_config
from config.queues import QueuesConfig
from hotline.simulate import (
    MENU_S,
    agent_number,
    dial_timeout_s,
    params_from_args,
    service_config,
    simulation_config,
)
from queueing.ideal import GENERAL, VIP, CallOutcome, run_ideal
from queueing.simulation import (
    MIN_LEASE_REAL_S,
    AgentSpan,
    LiveCall,
    ReportInputs,
    ServiceCall,
    SimulationParams,
    build_report,
    double_assignments,
    figures,
    progress_line,
    scale_queues,
)
from queueing.workload import Exponential, Fixed, generate

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture(scope="module")
def base() -> HotlineConfig:
    return load_config(CONFIG_DIR)


def params(**overrides: object) -> SimulationParams:
    values: dict[str, object] = {"calls_per_hour": 120, "aht_s": 180, "agents": 8}
    values.update(overrides)
    return SimulationParams(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"agents": 0}, "agent"),
        ({"agents": 0, "care_agents": 2}, "general agent"),
        ({"speedup": 0}, "speedup"),
        ({"vip_share": 1.5}, "vip_share"),
        ({"workers": 0}, "workers"),
        ({"wrap_up_s": -1}, "wrap_up_s"),
        ({"duration_s": math.inf}, "duration_s"),
    ],
)
def test_bad_parameters_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        params(**overrides)


def test_the_ideal_sees_the_same_agents_and_policy() -> None:
    one_pool = params(vip_share=0.2)
    assert [a.agent_id for a in one_pool.ideal_agents()] == [f"g{i:02d}" for i in range(1, 9)]
    assert one_pool.ideal_config().vip_overflow_s == 0.0  # VIPs first in one pool
    care = params(vip_share=0.2, care_agents=2, vip_overflow_s=15)
    agents = care.ideal_agents()
    assert [a.agent_id for a in agents][-2:] == ["c01", "c02"]
    assert dict(agents[-1].skills) == {VIP: 1} and dict(agents[0].skills) == {GENERAL: 1}
    assert care.ideal_config().vip_overflow_s == 15
    assert care.mean_handle_s == 180 and params(wrap_up_s=10).mean_handle_s == 190
    assert params(handle=Fixed(100.0)).mean_handle_s == 100
    assert care.target_for(1) == 30 and params(vip_target_s=20).target_for(1) == 20


def test_the_simulation_configuration_is_valid_and_matches_the_ideal(base: HotlineConfig) -> None:
    care = params(vip_share=0.2, care_agents=2, vip_target_s=20, wrap_up_s=5)
    config = simulation_config(care, base)
    queues = config.queues
    assert set(queues.queues) == {"general", "vip"}
    assert queues.queues["vip"].team == "care" and queues.queues["vip"].overflow_to == "general"
    assert queues.queues["vip"].target_answer_s == 20 and queues.queues["vip"].priority == 1
    assert queues.queues["general"].priority == 0 and queues.queues["general"].wrap_up_s == 5
    assert queues.eligible("c01") == {"vip": 1}  # VIP-only
    assert queues.eligible("g01") == {"general": 1}
    assert queues.agents["c02"].address == agent_number("c02") == "+15553000002"
    assert config.flow.start == "route" and config.surveys.mode_for("general").value == "off"
    pool = simulation_config(params(vip_share=0.2), base).queues
    assert pool.queues["vip"].team is None and pool.eligible("g01") == {"general": 1, "vip": 1}


def test_scaling_divides_real_time_durations_only(base: HotlineConfig) -> None:
    config = simulation_config(params(vip_share=0.2, care_agents=1, vip_overflow_s=12), base)
    scaled = scale_queues(config.queues, 60)
    q, s = config.queues.queues["vip"], scaled.queues["vip"]
    assert s.target_answer_s == pytest.approx(q.target_answer_s / 60)
    assert s.short_abandon_s == pytest.approx(q.short_abandon_s / 60)
    assert s.overflow_after_s == pytest.approx(12 / 60)
    assert s.callback_offer_s == pytest.approx(86400 / 60)
    assert s.announce_every_s == q.announce_every_s  # TwiML: the emulator scales it
    r = scaled.routing
    assert r.ring_timeout_s == pytest.approx(25 / 60)
    assert r.sweep_every_s == pytest.approx(1 / 60)
    assert r.reserve_lease_s == MIN_LEASE_REAL_S  # 10/60 s would be shorter than a slow REST
    assert scale_queues(config.queues, 1).routing.reserve_lease_s == 10
    with pytest.raises(ValueError):
        scale_queues(config.queues, 0)


def test_the_dial_timeout_bounds_ring_times(base: HotlineConfig) -> None:
    assert dial_timeout_s(service_config(params(speedup=60), base)) == 5
    assert dial_timeout_s(service_config(params(speedup=1), base)) == 25


def test_double_assignments_from_agent_legs() -> None:
    spans = [
        AgentSpan("g01", 1, 0.0, 100.0),
        AgentSpan("g01", 2, 100.0, 150.0),  # back to back: fine
        AgentSpan("g02", 3, 10.0, 50.0),
        AgentSpan("g02", 4, 40.0, 60.0),  # overlaps call 3
        AgentSpan("g03", 4, 70.0, 90.0),  # call 4 reached a second agent
    ]
    found = double_assignments(spans, busy_legs=1)
    assert found == {
        "overlapping_legs": 1,
        "busy_legs": 1,
        "calls_paired_twice": 1,
        "total": 3,
    }
    assert double_assignments([])["total"] == 0


def _call(call_id: int, wait: float, *, answered: bool = True, priority: int = 0) -> CallOutcome:
    return CallOutcome(
        call_id, float(call_id), wait, answered, "g01" if answered else None, priority,
        priority == 1, 100.0 if answered else 0.0,
    )  # fmt: skip


def test_figures_use_each_priority_s_own_target() -> None:
    p = params(vip_target_s=10)
    rows = [
        _call(0, 5.0),
        _call(1, 20.0),  # general: within 30 s
        _call(2, 20.0, priority=1),  # VIP: after 10 s
        _call(3, 40.0, answered=False),  # abandoned after the general target
        _call(4, 2.0, answered=False),  # short abandon: out of the service level
    ]
    fig = figures(rows, p, offered=6)
    assert fig["offered"] == 6 and fig["answered"] == 3 and fig["abandoned"] == 2
    assert fig["answered_within_target"] == 2 and fig["abandoned_after_target"] == 1
    assert fig["service_level"] == pytest.approx(2 / 4)
    assert fig["asa_s"] == pytest.approx(15.0)
    assert fig["abandon_rate"] == pytest.approx(2 / 6)


def test_report_compares_live_ideal_and_service_call_for_call() -> None:
    p = params(duration_s=1800, seed=3)
    workload = generate(p.workload_spec(), p.seed)
    ideal = run_ideal(workload, p.ideal_config())
    live = [
        LiveCall(
            o.call_id,
            f"CA{o.call_id:032d}",
            o.priority,
            o.vip,
            o.arrival_s,
            o.wait_s + 0.5,
            o.answered,
            not o.answered,
            o.agent_id,
            o.handle_s,
        )  # fmt: skip
        for o in ideal.outcomes
    ]
    service = {
        c.call_sid: ServiceCall(c.call_sid, "completed", c.wait_s - 0.2, c.agent_id) for c in live
    }
    first = live[0].call_sid
    service[first] = ServiceCall(first, "completed", live[0].wait_s, "g99")  # wrong agent
    report = build_report(
        ReportInputs(
            params=p, workload=workload, live=live, ideal=ideal, spans=[], busy_legs=0,
            errors=[{"code": 11200}], internal_errors=0, service_calls=service,
            service_snapshot={"offered": len(live)}, busy_s=ideal.busy_s, real_s=1.0,
        )
    )  # fmt: skip
    assert report["offered"] == len(workload.calls) == report["answered"]
    assert report["service_level"] == report["ideal_service_level"]
    assert report["extra_wait_p95_s"] == pytest.approx(0.5)
    assert report["occupancy"] == pytest.approx(report["ideal_occupancy"], abs=1e-4)
    assert report["errors"] == 1 and report["error_codes"] == {"11200": 1}
    assert report["lost_calls"] == 0 and report["double_assignments"] == 0
    agreement = report["service_agreement"]
    assert agreement["mismatches"] == 1 and agreement["examples"][0]["service_agent"] == "g99"
    assert agreement["wait_diff_median_s"] == pytest.approx(-0.2)
    assert report["erlang_c_service_level"] == pytest.approx(0.7442, abs=1e-4)
    assert report["by_priority"]["0"]["ideal_service_level"] == report["ideal_service_level"]


def test_a_lost_call_counts_as_offered_not_abandoned() -> None:
    p = params(duration_s=600)
    lost = LiveCall(7, "CA7", 0, False, 10.0, 0.0, False, False, None, 0.0)
    assert lost.lost
    assert figures([], p, offered=1)["abandon_rate"] == 0.0


def test_progress_line() -> None:
    line = progress_line(
        simulated_s=1800, duration_s=3600, placed=60, total=120, finished=55, waiting=3, width=10
    )
    assert line.startswith("[#####.....]  50 %")
    assert "30.0/60.0 min" in line and "60/120 calls placed, 55 done, 3 waiting" in line
    done = progress_line(
        simulated_s=3700, duration_s=3600, placed=120, total=120, finished=120, waiting=0
    )
    assert "100 %" in done


def test_command_line_parameters() -> None:
    import argparse

    from hotline.simulate import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--calls-per-hour",
            "120",
            "--aht",
            "180",
            "--agents",
            "8",
            "--patience",
            "60",
            "--vip-share",
            "0.2",
            "--care-agents",
            "2",
            "--ring",
            "uniform:1,3",
            "--speedup",
            "30",
            "--workers",
            "3",
            "--seed",
            "4",
        ]
    )
    p = params_from_args(args)
    assert p.patience == Exponential(60.0)  # a bare number is a mean
    assert str(p.ring) == "uniform:1,3" and p.workers == 3 and p.speedup == 30
    fixed = parser.parse_args(
        ["--calls-per-hour", "1", "--aht", "1", "--agents", "1", "--patience", "fixed:60"]
    )
    assert params_from_args(fixed).patience == Fixed(60.0)
    with pytest.raises(SystemExit):
        parser.parse_args(["--calls-per-hour", "1", "--aht", "1", "--agents", "0"])
    assert pytest.approx(0.8) == MENU_S


def test_queues_config_type(base: HotlineConfig) -> None:
    assert isinstance(service_config(params(), base).queues, QueuesConfig)
