"""Seeded workload sample paths and distribution specs."""

from __future__ import annotations

import json
import math
import random
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from queueing.workload import (
    Distribution,
    Exponential,
    Fixed,
    Lognormal,
    Uniform,
    Workload,
    WorkloadSpec,
    generate,
    parse_distribution,
    parse_patience,
)


@pytest.mark.parametrize(
    ("text", "expected", "canonical"),
    [
        ("exp:180", Exponential(180.0), "exp:180"),
        ("exponential:60.5", Exponential(60.5), "exp:60.5"),
        ("lognormal:180,60", Lognormal(180.0, 60.0), "lognormal:180,60"),
        (" LogNormal: 180 , 60 ", Lognormal(180.0, 60.0), "lognormal:180,60"),
        ("fixed:5", Fixed(5.0), "fixed:5"),
        ("fixed:0", Fixed(0.0), "fixed:0"),
        ("7", Fixed(7.0), "fixed:7"),
        ("uniform:2,8", Uniform(2.0, 8.0), "uniform:2,8"),
        ("uniform:3,3", Uniform(3.0, 3.0), "uniform:3,3"),
    ],
)
def test_parse_distribution(text: str, expected: Distribution, canonical: str) -> None:
    parsed = parse_distribution(text)
    assert parsed == expected
    assert str(parsed) == canonical
    assert parse_distribution(str(parsed)) == parsed


@pytest.mark.parametrize(
    "text",
    [
        "",
        "exp",
        "exp:",
        "exp:0",
        "exp:-3",
        "exp:1,2",
        "lognormal:180",
        "lognormal:0,10",
        "lognormal:180,-1",
        "uniform:8,2",
        "uniform:a,b",
        "gamma:2,3",
        "fixed:nan",
        "fixed:inf",
        "fixed:-1",
    ],
)
def test_parse_distribution_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="bad distribution"):
        parse_distribution(text)


@pytest.mark.parametrize("text", [None, "", "inf", "none", "Infinite"])
def test_parse_patience_infinite(text: str | None) -> None:
    assert parse_patience(text) is None


def test_parse_patience_finite() -> None:
    assert parse_patience("exp:60") == Exponential(60.0)


@pytest.mark.parametrize(
    "dist",
    [Exponential(180.0), Lognormal(180.0, 60.0), Fixed(5.0), Uniform(2.0, 8.0)],
)
def test_sample_means(dist: Distribution) -> None:
    rng = random.Random(42)
    values = [dist.sample(rng) for _ in range(40_000)]
    assert min(values) >= 0
    assert statistics.fmean(values) == pytest.approx(dist.mean, rel=0.02)
    if isinstance(dist, Lognormal):
        assert statistics.stdev(values) == pytest.approx(dist.sd, rel=0.05)


def test_poisson_arrivals_and_shares() -> None:
    spec = WorkloadSpec(
        calls_per_hour=120,
        duration_s=200 * 3600,
        handle=Lognormal(180, 60),
        ring=Uniform(2, 8),
        patience=Exponential(60),
        vip_share=0.2,
        vip_priority=5,
    )
    w = generate(spec, seed=3)
    n = len(w.calls)
    assert n == pytest.approx(24_000, abs=4 * math.sqrt(24_000))
    arrivals = [c.arrival_s for c in w.calls]
    assert arrivals == sorted(arrivals) and arrivals[0] > 0 and arrivals[-1] < spec.duration_s
    gaps = [b - a for a, b in zip([0.0, *arrivals], arrivals, strict=False)]
    assert statistics.fmean(gaps) == pytest.approx(30.0, rel=0.03)
    assert statistics.stdev(gaps) == pytest.approx(30.0, rel=0.05)  # exponential: sd = mean
    assert [c.call_id for c in w.calls] == list(range(n))
    vips = [c for c in w.calls if c.vip]
    assert len(vips) / n == pytest.approx(0.2, abs=0.01)
    assert all(c.priority == (5 if c.vip else 0) for c in w.calls)
    assert all(2 <= c.ring_s <= 8 for c in w.calls)
    assert statistics.fmean(c.patience_s for c in w.calls) == pytest.approx(60, rel=0.03)


def test_deterministic_for_a_seed() -> None:
    spec = WorkloadSpec(calls_per_hour=300, duration_s=3600, patience=Exponential(60))
    assert generate(spec, 7) == generate(spec, 7)
    assert generate(spec, 7).calls != generate(spec, 8).calls


def test_pinned_first_call() -> None:
    # Recorded sample paths must replay: a change to the streams shows up here.
    c = generate(WorkloadSpec(calls_per_hour=120, duration_s=3600), seed=1).calls[0]
    assert (round(c.arrival_s, 6), round(c.handle_s, 6)) == (27.562089, 49.52484)


def test_common_random_numbers() -> None:
    # Adding patience or VIPs changes nothing else of the sample path.
    base = generate(WorkloadSpec(calls_per_hour=120, duration_s=7200), seed=11)
    other = generate(
        WorkloadSpec(calls_per_hour=120, duration_s=7200, patience=Exponential(60), vip_share=0.3),
        seed=11,
    )
    assert [(c.arrival_s, c.handle_s, c.ring_s) for c in base.calls] == [
        (c.arrival_s, c.handle_s, c.ring_s) for c in other.calls
    ]
    assert all(math.isinf(c.patience_s) and not c.vip for c in base.calls)


def test_round_trip_json() -> None:
    spec = WorkloadSpec(
        calls_per_hour=90,
        duration_s=1800,
        ring=Fixed(4),
        patience=Lognormal(60, 20),
        vip_share=0.5,
    )
    w = generate(spec, seed=5)
    assert Workload.from_dict(json.loads(json.dumps(w.to_dict()))) == w
    no_patience = generate(WorkloadSpec(calls_per_hour=90, duration_s=1800), seed=5)
    assert Workload.from_dict(json.loads(json.dumps(no_patience.to_dict()))) == no_patience


def test_empty_and_invalid_specs() -> None:
    assert generate(WorkloadSpec(calls_per_hour=0, duration_s=3600), 1).calls == ()
    assert generate(WorkloadSpec(calls_per_hour=100, duration_s=0), 1).calls == ()
    for kwargs in (
        {"calls_per_hour": -1.0, "duration_s": 10.0},
        {"calls_per_hour": 1.0, "duration_s": math.inf},
        {"calls_per_hour": 1.0, "duration_s": 10.0, "vip_share": 1.5},
    ):
        with pytest.raises(ValueError):
            WorkloadSpec(**kwargs)  # type: ignore[arg-type]


@settings(deadline=None)
@given(seed=st.integers(0, 2**32), rate=st.floats(1, 600), hours=st.floats(0.01, 2))
def test_any_seed_gives_valid_path(seed: int, rate: float, hours: float) -> None:
    w = generate(WorkloadSpec(calls_per_hour=rate, duration_s=hours * 3600), seed)
    assert all(c.handle_s > 0 and c.ring_s == 0 for c in w.calls)
    assert all(a.arrival_s < b.arrival_s for a, b in zip(w.calls, w.calls[1:], strict=False))
