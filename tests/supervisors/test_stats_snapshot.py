"""GET /api/v1/stats and /metrics serve figures at most FIGURES_MAX_AGE_S old, computed
once for all the requests of that time, with their age; redaction still applies per role."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from queueing import supervisor_stats
from queueing.supervisor_stats import FIGURES_MAX_AGE_S
from tests.supervisors.conftest import (
    VIEWER_TOKEN,
    ServiceFactory,
    broadcaster,
    sign_in,
    store_of,
    sup_stats,
)

CALLER = {"caller": "+15550004321"}


async def _abandon(client: Any) -> None:
    store = store_of(client)
    await store.join("CAgone", "general", info={"caller": "+15551234567"})
    await store.leave("CAgone")


async def test_concurrent_requests_share_one_computation(
    service: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await service()
    source = sup_stats(client)
    computed = 0
    real = source._fresh  # what the GET routes compute with (the broadcaster runs apart)

    async def counted() -> Any:
        nonlocal computed
        computed += 1
        return await real()

    monkeypatch.setattr(source, "_fresh", counted)
    headers = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
    responses = await asyncio.gather(
        *(client.get("/api/v1/stats", headers=headers) for _ in range(12)),
        client.get("/metrics", headers=headers),
    )
    assert all(r.status == 200 for r in responses)
    bodies = [await r.json() for r in responses[:-1]]
    assert computed == 1
    assert len({b["at_ms"] for b in bodies}) == 1
    assert all(0 <= b["age_s"] < FIGURES_MAX_AGE_S for b in bodies)


async def test_the_snapshot_is_reused_within_its_age_and_refreshed_after(
    service: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervisor_stats, "FIGURES_MAX_AGE_S", 0.5)
    client = await service()
    headers = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
    first = await (await client.get("/api/v1/stats", headers=headers)).json()
    assert first["queues"]["general"]["waiting"] == 0
    await store_of(client).join("CAnew", "general", info=CALLER)
    again = await (await client.get("/api/v1/stats", headers=headers)).json()
    assert again["at_ms"] == first["at_ms"] and again["age_s"] >= first["age_s"]
    assert again["queues"]["general"]["waiting"] == 0  # within its age: the same snapshot
    await asyncio.sleep(0.5)
    later = await (await client.get("/api/v1/stats", headers=headers)).json()
    assert later["at_ms"] > first["at_ms"] and later["age_s"] < 0.5
    assert later["queues"]["general"]["waiting"] == 1
    assert [c["call_sid"] for c in later["waiting_calls"]] == ["CAnew"]


async def test_redaction_applies_to_a_shared_snapshot(service: ServiceFactory) -> None:
    client = await service()
    await _abandon(client)
    await sign_in(client)
    sup = await (await client.get("/api/v1/stats")).json()
    client.session.cookie_jar.clear()
    headers = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
    resp = await client.get("/api/v1/stats", headers=headers)
    viewer = await resp.json()
    assert viewer["at_ms"] == sup["at_ms"]  # the same figures
    assert sup["role"] == "supervisor" and viewer["role"] == "viewer"
    assert sup["abandoned_today"][0]["phone"] == "+15551234567"
    assert "phone" not in viewer["abandoned_today"][0]
    assert "5551234567" not in await resp.text()


async def test_while_streams_are_watched_gets_take_the_streamed_figures(
    service: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await service()
    source = sup_stats(client)
    computed = 0
    real = source._fresh

    async def counted() -> Any:
        nonlocal computed
        computed += 1
        return await real()

    monkeypatch.setattr(source, "_fresh", counted)
    headers = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
    stream = await client.get("/api/v1/stats/stream", headers=headers)
    b = broadcaster(client)
    async with asyncio.timeout(5):
        while True:  # an event computed while the stream is watched (not the start-up one)
            await asyncio.sleep(0.05)
            if b.ring and b.subscribers and source.store.now_ms() - b.ring[-1][1]["at_ms"] < 500:
                break
    body = await (await client.get("/api/v1/stats", headers=headers)).json()
    stream.close()
    assert computed == 0
    assert body["at_ms"] in {f["at_ms"] for _, f in b.ring}
    assert body["age_s"] < FIGURES_MAX_AGE_S
