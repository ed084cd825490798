"""Erlang B / C against published reference values, an exact oracle and properties."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from queueing.erlang import (
    agents_needed,
    asa,
    erlang_b,
    erlang_c,
    evaluate,
    occupancy,
    offered_load,
    service_level,
)


def test_issue_reference_example() -> None:
    # 100 calls per 30 min, AHT 3 min, 14 agents, T = 20 s (the issue's and Call Centre
    # Helper's worked example): P(wait) 0.1741, SL 0.8884, ASA 7.84 s.
    fig = evaluate(calls_per_hour=200, aht_s=180, agents=14, target_s=20)
    assert fig.traffic_erlangs == pytest.approx(10.0)
    assert round(fig.p_wait, 4) == 0.1741
    assert round(fig.service_level, 4) == 0.8884
    assert round(fig.asa_s, 2) == 7.84
    assert fig.occupancy == pytest.approx(10 / 14)


# Published values. Erlang C rows with A = 10 erlangs, h = 180 s, T = 20 s are the Call Centre
# Helper "Erlang C formula made simple" table (11..14 agents); B(4, 2) and B(5, 3) are the two
# worked applications on Wolfram's ErlangB reference page; B(10, 10) = 0.2146 is the entry of
# every Erlang B table; C(3, 2) = 4/9 is the textbook M/M/3 example.
@pytest.mark.parametrize(
    ("agents", "traffic", "p_wait", "sl_20s", "asa_s"),
    [
        (11, 10.0, 0.6821, None, None),
        (12, 10.0, 0.4494, None, None),
        (13, 10.0, 0.2853, None, 17.12),
        (14, 10.0, 0.1741, 0.8884, 7.84),
    ],
)
def test_erlang_c_published_table(
    agents: int, traffic: float, p_wait: float, sl_20s: float | None, asa_s: float | None
) -> None:
    assert round(erlang_c(agents, traffic), 4) == p_wait
    if sl_20s is not None:
        assert round(service_level(agents, traffic, 180, 20), 4) == sl_20s
    if asa_s is not None:
        assert round(asa(agents, traffic, 180), 2) == asa_s


@pytest.mark.parametrize(
    ("agents", "traffic", "blocking"),
    [(4, 2.0, 0.0952), (5, 3.0, 0.1101), (10, 10.0, 0.2146), (1, 1.0, 0.5)],
)
def test_erlang_b_published(agents: int, traffic: float, blocking: float) -> None:
    assert round(erlang_b(agents, traffic), 4) == blocking


def test_erlang_c_textbook_mm3() -> None:
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9)


def test_wolfram_support_staffing() -> None:
    # 30 calls/h, 5 min service: fewest staff so that 90 % of calls are not delayed -> 6.
    traffic = offered_load(30, 300)
    assert traffic == pytest.approx(2.5)
    assert 1 - erlang_c(5, traffic) < 0.9 <= 1 - erlang_c(6, traffic)


def test_staffing_advice_reference() -> None:
    fig = agents_needed(200, 180, target_s=20, service_level_goal=0.8)
    assert fig.agents == 14
    assert round(fig.service_level, 4) == 0.8884
    # an ASA goal can ask for more agents than the service level alone
    assert agents_needed(200, 180, target_s=20, service_level_goal=0.8, max_asa_s=2).agents == 16
    assert agents_needed(200, 180, target_s=20, service_level_goal=0.5).agents == 12
    assert (
        agents_needed(200, 180, target_s=20, service_level_goal=0.5, max_occupancy=0.7).agents == 15
    )


def test_zero_traffic_needs_nobody() -> None:
    fig = agents_needed(0, 180, target_s=30, service_level_goal=0.8)
    assert (fig.agents, fig.service_level, fig.asa_s) == (0, 1.0, 0.0)
    assert erlang_c(1, 0.0) == 0.0


def _exact_c(n: int, a: Fraction) -> Fraction:
    terms = [a**k / math.factorial(k) for k in range(n)]
    top = a**n / math.factorial(n) * Fraction(n) / (n - a)
    return top / (sum(terms, Fraction(0)) + top)


@settings(deadline=None)
@given(
    n=st.integers(min_value=1, max_value=60),
    ratio=st.fractions(min_value=Fraction(1, 100), max_value=Fraction(99, 100)),
)
def test_recursion_matches_exact_formula(n: int, ratio: Fraction) -> None:
    a = ratio * n
    assert erlang_c(n, float(a)) == pytest.approx(float(_exact_c(n, a)), rel=1e-9, abs=1e-15)


def test_stable_for_thousands_of_agents() -> None:
    # 50 erlangs per 100 calls/min: 5,000 agents at 90 % occupancy, where factorials overflow.
    c = erlang_c(5000, 4500.0)
    assert 0.0 <= c <= 1.0 and math.isfinite(c)
    fig = agents_needed(90_000, 180, target_s=30, service_level_goal=0.8)
    assert fig.agents > 4500
    assert fig.service_level >= 0.8
    previous = evaluate(90_000, 180, fig.agents - 1, 30)
    assert previous.service_level < 0.8


@pytest.mark.parametrize(("agents", "traffic"), [(10, 10.0), (9, 10.0), (1, 1.0), (1, 3.5)])
def test_rejects_unstable(agents: int, traffic: float) -> None:
    with pytest.raises(ValueError, match="N > A"):
        erlang_c(agents, traffic)
    with pytest.raises(ValueError, match="N > A"):
        service_level(agents, traffic, 180, 30)
    with pytest.raises(ValueError, match="N > A"):
        occupancy(agents, traffic)


@pytest.mark.parametrize(
    "call",
    [
        lambda: erlang_c(0, 0.5),
        lambda: erlang_c(-3, 0.5),
        lambda: erlang_c(2.0, 0.5),  # type: ignore[arg-type]
        lambda: erlang_c(True, 0.5),
        lambda: erlang_c(5, -1.0),
        lambda: erlang_c(5, math.nan),
        lambda: erlang_b(5, math.inf),
        lambda: service_level(5, 1.0, 0, 20),
        lambda: service_level(5, 1.0, 180, -1),
        lambda: offered_load(-1, 180),
        lambda: agents_needed(100, 180, target_s=20, service_level_goal=1.0),
        lambda: agents_needed(100, 180, target_s=20, service_level_goal=0.8, max_asa_s=0),
        lambda: agents_needed(100, 180, target_s=20, service_level_goal=0.8, max_occupancy=1.5),
    ],
)
def test_rejects_bad_input(call: object) -> None:
    assert callable(call)
    with pytest.raises(ValueError):
        call()


traffic_st = st.floats(min_value=0.05, max_value=400.0, allow_nan=False)


@settings(max_examples=200)
@given(a=traffic_st, extra=st.integers(min_value=1, max_value=50), t=st.floats(0, 120))
def test_service_level_increases_with_agents(a: float, extra: int, t: float) -> None:
    n = math.floor(a) + extra
    assert service_level(n + 1, a, 180, t) >= service_level(n, a, 180, t) - 1e-12
    assert erlang_c(n + 1, a) <= erlang_c(n, a) + 1e-12
    assert asa(n + 1, a, 180) <= asa(n, a, 180) + 1e-12


@settings(max_examples=200)
@given(a=traffic_st, extra=st.integers(min_value=1, max_value=50), t=st.floats(0, 120))
def test_figures_are_probabilities(a: float, extra: int, t: float) -> None:
    n = math.floor(a) + extra
    b, c, sl = erlang_b(n, a), erlang_c(n, a), service_level(n, a, 180, t)
    assert 0.0 <= b <= c <= 1.0  # waiting is likelier than blocking with the same N, A
    assert 1.0 - c - 1e-12 <= sl <= 1.0
    assert service_level(n, a, 180, t + 10) >= sl


@settings(max_examples=100, deadline=None)
@given(
    calls=st.floats(min_value=1, max_value=5000),
    aht=st.floats(min_value=10, max_value=900),
    goal=st.floats(min_value=0.0, max_value=0.99),
)
def test_staffing_is_minimal(calls: float, aht: float, goal: float) -> None:
    fig = agents_needed(calls, aht, target_s=30, service_level_goal=goal)
    assert fig.service_level >= goal
    if fig.agents - 1 > fig.traffic_erlangs:
        assert evaluate(calls, aht, fig.agents - 1, 30).service_level < goal
