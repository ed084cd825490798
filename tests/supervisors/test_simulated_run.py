"""A seeded workload (queueing.workload) played against the real queue store in compressed
time: the simulator keeps its own record of every call, and /api/v1/stats and /metrics
must agree with it (offered, answered, abandoned, short abandons, service level, ASA)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from queueing import metrics
from queueing.store import QueueStore, StaleReservation
from queueing.workload import Fixed, Uniform, WorkloadSpec, generate
from tests.supervisors.conftest import VIEWER_TOKEN, ServiceFactory, store_of

QUEUE = "complaints"  # target 1 s, short abandon 0.2 s, no wrap-up (test configuration)


@dataclass(frozen=True)
class Outcome:
    wait_s: float
    answered: bool
    handle_s: float = 0.0
    priority: int = 0


async def _reservation(store: QueueStore, sid: str) -> int | None:
    raw = await store.redis.hget(store.keys.route_calls(store.group), sid)
    if raw is None:
        return None
    call = json.loads(raw)
    return int(call["res"]) if call.get("st") in ("reserved", "ringing") else None


async def _caller(store: QueueStore, sid: str, call: Any, t0: float, out: list[Outcome]) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, t0 + call.arrival_s - loop.time()))
    await store.join(sid, QUEUE, info={"caller": f"+1555700{call.call_id:04d}"})
    gives_up = loop.time() + call.patience_s
    while True:
        res = await _reservation(store, sid)
        if res is not None:
            if loop.time() + call.ring_s < gives_up:
                await asyncio.sleep(call.ring_s)
                try:
                    answered = await store.answer(sid, res)
                except StaleReservation:
                    continue
                out.append(Outcome(answered.data["waited_ms"] / 1000, True, call.handle_s))
                await asyncio.sleep(call.handle_s)
                await store.complete(sid)
                return
            await asyncio.sleep(max(0.0, gives_up - loop.time()))
        if loop.time() >= gives_up:
            left = await store.leave(sid)
            if left.data.get("already"):
                continue  # answered meanwhile? (cannot happen: we answer ourselves)
            out.append(Outcome(left.data["waited_ms"] / 1000, False))
            return
        await asyncio.sleep(0.02)


async def test_stats_and_metrics_agree_with_the_simulators_ground_truth(
    service: ServiceFactory,
) -> None:
    client: Any = await service()
    store = store_of(client)
    spec = WorkloadSpec(
        calls_per_hour=3 * 3600,
        duration_s=8.0,
        handle=Uniform(0.3, 1.2),
        ring=Fixed(0.05),
        patience=Uniform(0.1, 2.5),
    )
    workload = generate(spec, seed=7)
    await store.login("m1", ready=True)
    await store.login("m2", ready=True)
    outcomes: list[Outcome] = []
    t0 = asyncio.get_running_loop().time()
    async with asyncio.TaskGroup() as tg:
        for call in workload.calls:
            tg.create_task(_caller(store, f"CAsim{call.call_id:04d}", call, t0, outcomes))
    truth = metrics.summarize(outcomes, target_s=1.0, short_abandon_s=0.2)
    assert truth.offered == len(workload.calls) >= 15
    assert truth.answered > 0 and truth.abandoned > 0 and truth.abandoned_after_target > 0

    headers = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
    stats = await (await client.get("/api/v1/stats", headers=headers)).json()
    text = await (await client.get("/metrics", headers=headers)).text()
    q = stats["queues"][QUEUE]
    assert (q["offered"], q["answered"], q["abandoned"], q["short_abandons"]) == (
        truth.offered,
        truth.answered,
        truth.abandoned,
        truth.short_abandons,
    )
    assert q["answered_in_target"] == truth.answered_within_target
    assert q["abandoned_after_target"] == truth.abandoned_after_target
    assert q["service_level"] == pytest.approx(truth.service_level)
    assert q["asa_s"] == pytest.approx(truth.asa_s, abs=0.05)
    assert q["abandon_rate"] == pytest.approx(truth.abandon_rate)
    assert stats["centre"]["service_level"] == pytest.approx(truth.service_level)
    samples = {
        (s.name, s.labels.get("queue"), s.labels.get("outcome"), s.labels.get("le")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("hotline_queue_offered_total", QUEUE, None, None)] == truth.offered
    assert samples[("hotline_queue_answered_total", QUEUE, None, None)] == truth.answered
    assert samples[("hotline_queue_abandoned_total", QUEUE, None, None)] == truth.abandoned
    assert samples[("hotline_queue_service_level", QUEUE, None, None)] == pytest.approx(
        truth.service_level
    )
    # the wait histogram counts every ended call once, in the right bucket
    answered_waits = [o.wait_s for o in outcomes if o.answered]
    abandoned_waits = [o.wait_s for o in outcomes if not o.answered]
    for outcome, waits in (("answered", answered_waits), ("abandoned", abandoned_waits)):
        key = ("hotline_queue_wait_seconds_count", QUEUE, outcome, None)
        assert samples[key] == len(waits)
        le5 = ("hotline_queue_wait_seconds_bucket", QUEUE, outcome, "5.0")
        assert samples[le5] == sum(1 for w in waits if w <= 5)
        total = ("hotline_queue_wait_seconds_sum", QUEUE, outcome, None)
        assert samples[total] == pytest.approx(sum(waits), abs=0.01 * len(waits) + 0.01)
