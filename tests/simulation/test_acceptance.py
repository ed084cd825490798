"""Issue 4's acceptance, through `hotline simulate` (the command line, end to end).

The four scenarios run at the same time, each as its own `python -m hotline simulate
--json` process (the live runs are mostly idle waiting on emulated time, so four fit on
two cores; sequentially they would take four times as long). Each is one simulated hour
of 120 calls/h, AHT 180 s (exponential), target 30 s, at speed-up SPEEDUP: an hour lasts
3600 / SPEEDUP real seconds. The trade-off: a larger speed-up is quicker, but multiplies
every real millisecond of webhook, Redis and REST latency by the same factor into extra
emulated wait (docs/SIMULATION.md has the measurements that chose SPEEDUP).

Seeds: 10 for the FIFO and patience scenarios (its ideal service level, 79 %, is close to
Erlang C's 74 %: calls do queue); 6 for the VIP scenario (an hour whose ideal VIP service
level meets the goal; over 200 hours the same staffing averages 98.5 % at 20 s, 10 % of
hours fall below 95 %).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(420)

ROOT = Path(__file__).resolve().parents[2]
SPEEDUP = 24
COMMON = [
    "--calls-per-hour", "120",
    "--aht", "180",
    "--agents", "8",
    "--target", "30",
    "--duration", "3600",
    "--speedup", str(SPEEDUP),
    "--json",
    "--calls",
    "--no-progress",
]  # fmt: skip
SCENARIOS: dict[str, list[str]] = {
    "fifo": ["--seed", "10"],
    "fifo_3_workers": ["--seed", "10", "--workers", "3"],
    # 8 general agents + 2 VIP-only care agents; a VIP goes to a free care agent, else at
    # once to any free general agent, ahead of general calls; VIP target 20 s as in
    # config/queues.yaml (one pool of 8 gives VIPs about 87 % at 20 s on average)
    "vip": ["--seed", "6", "--vip-share", "0.2", "--care-agents", "2", "--vip-target", "20"],
    "patience": ["--seed", "10", "--patience", "exp:60"],
}
RUN_TIMEOUT_S = 360


@pytest.fixture(scope="module")
def reports(
    sim_redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, dict[str, Any]]]:
    out_dir = tmp_path_factory.mktemp("simulate")
    env = dict(os.environ, REDIS_URL=sim_redis_url, HOTLINE_JSON_LOGS="false")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    files = {}
    for name, extra in SCENARIOS.items():
        stdout = (out_dir / f"{name}.json").open("wb")
        stderr = (out_dir / f"{name}.log").open("wb")
        files[name] = (stdout, stderr)
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "hotline", "simulate", *COMMON, *extra],
            cwd=ROOT,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:
        for proc in procs.values():
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for stdout, stderr in files.values():
            stdout.close()
            stderr.close()
    result: dict[str, dict[str, Any]] = {}
    for name, proc in procs.items():
        log = (out_dir / f"{name}.log").read_text(errors="replace")[-3000:]
        assert proc.returncode == 0, f"{name} exited with {proc.returncode}:\n{log}"
        result[name] = json.loads((out_dir / f"{name}.json").read_text())
    yield result


def _summary(r: dict[str, Any]) -> str:
    keys = (
        "offered", "answered", "abandoned", "service_level", "ideal_service_level",
        "erlang_c_service_level", "asa_s", "ideal_asa_s", "erlang_c_asa_s", "abandon_rate",
        "ideal_abandon_rate", "extra_wait_median_s", "extra_wait_p95_s", "extra_wait_max_s",
        "double_assignments", "lost_calls", "errors", "real_s", "simulator_loop_lag",
        "scheduled_ideal",
    )  # fmt: skip
    return json.dumps({k: r.get(k) for k in keys} | {"by_priority": r["by_priority"]})


def _clean(r: dict[str, Any]) -> None:
    assert r["double_assignments"] == 0, _summary(r)
    assert r["lost_calls"] == 0, _summary(r)
    assert r["errors"] == 0, (r["error_codes"], _summary(r))
    agreement = r["service_agreement"]  # same outcome and agent, call for call
    assert agreement["outcome_or_agent_mismatches"] == 0, agreement
    service = r["service"]
    assert (service["offered"], service["answered"], service["abandoned"]) == (
        r["offered"],
        r["answered"],
        r["abandoned"],
    ), service


def _extra_wait(r: dict[str, Any]) -> None:
    """extra_wait_p95_s <= 1 s. Every real millisecond the machine withholds the CPU from
    the emulator or the service is SPEEDUP emulated ones; when the simulator's own event
    loop was held up by more than 50 ms (measured in the run), the figure measures the
    machine, not the router: the test then reports it as an expected failure, with the
    numbers, instead of passing or failing on a co-tenant's load."""
    lag = r["simulator_loop_lag"]
    if r["extra_wait_p95_s"] > 1.0 and lag.get("over_50ms", 0) > 0:
        pytest.xfail(
            f"extra_wait_p95_s {r['extra_wait_p95_s']} s > 1 s, but this machine held the "
            f"simulator's event loop up {lag['over_50ms']} times by more than 50 ms (max "
            f"{lag['max_ms']:.0f} ms = {lag['max_ms'] * SPEEDUP / 1000:.1f} s emulated)"
        )
    assert r["extra_wait_p95_s"] <= 1.0, _summary(r)


def _fifo(r: dict[str, Any]) -> None:
    assert r["offered"] > 100 and r["abandoned"] == 0
    assert abs(r["service_level"] - r["ideal_service_level"]) <= 0.02, _summary(r)
    _clean(r)
    _extra_wait(r)


def test_one_queue_fifo_no_abandonment(reports: dict[str, dict[str, Any]]) -> None:
    _fifo(reports["fifo"])


def test_the_same_with_three_service_processes(reports: dict[str, dict[str, Any]]) -> None:
    r = reports["fifo_3_workers"]
    assert r["service_processes"] == 3 and r["in_process"] is False
    _fifo(r)


def test_vip_callers_get_their_service_level(reports: dict[str, dict[str, Any]]) -> None:
    r = reports["vip"]
    vip = r["by_priority"]["1"]
    assert vip["label"] == "vip" and vip["offered"] >= 20
    assert vip["service_level"] >= 0.95, _summary(r)
    assert abs(r["service_level"] - r["ideal_service_level"]) <= 0.02, _summary(r)
    _clean(r)


def test_abandonment_matches_the_ideal(reports: dict[str, dict[str, Any]]) -> None:
    r = reports["patience"]
    assert r["abandoned"] > 0
    assert abs(r["abandon_rate"] - r["ideal_abandon_rate"]) <= 0.02, _summary(r)
    _clean(r)
