"""GET /api/v1/stats and /metrics serve figures refreshed once FIGURES_MAX_AGE_S old (in the
background, the held ones served meanwhile up to FIGURES_STALE_MAX_S), computed once for all
the requests of that time, with their age; redaction still applies per role."""

from __future__ import annotations

import asyncio
import json
import logging
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
    # past its age: served once more (its age says so) while one refresh runs meanwhile
    stale = await (await client.get("/api/v1/stats", headers=headers)).json()
    assert stale["at_ms"] == first["at_ms"] and stale["age_s"] >= 0.5
    async with asyncio.timeout(5):
        while True:
            later = await (await client.get("/api/v1/stats", headers=headers)).json()
            if later["at_ms"] > first["at_ms"]:
                break
            await asyncio.sleep(0.02)
    assert later["age_s"] < 0.5
    assert later["queues"]["general"]["waiting"] == 1
    assert [c["call_sid"] for c in later["waiting_calls"]] == ["CAnew"]


async def test_past_the_stale_bound_requests_wait_for_new_figures(
    service: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervisor_stats, "FIGURES_MAX_AGE_S", 0.2)
    monkeypatch.setattr(supervisor_stats, "FIGURES_STALE_MAX_S", 0.4)
    client = await service()
    headers = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
    first = await (await client.get("/api/v1/stats", headers=headers)).json()
    await store_of(client).join("CAnew", "general", info=CALLER)
    await asyncio.sleep(0.45)
    body = await (await client.get("/api/v1/stats", headers=headers)).json()
    assert body["at_ms"] > first["at_ms"] and body["age_s"] < 0.2
    assert body["queues"]["general"]["waiting"] == 1


async def test_a_failed_refresh_is_logged_and_the_held_figures_served(
    service: ServiceFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(supervisor_stats, "FIGURES_MAX_AGE_S", 0.2)
    client = await service()
    source = sup_stats(client)
    headers = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
    first = await (await client.get("/api/v1/stats", headers=headers)).json()

    async def broken() -> Any:
        raise ConnectionError("redis away")

    monkeypatch.setattr(source, "_fresh", broken)
    await asyncio.sleep(0.25)
    with caplog.at_level(logging.ERROR, logger="hotline.queueing"):
        for _ in range(5):
            resp = await client.get("/api/v1/stats", headers=headers)
            assert resp.status == 200
            body = await resp.json()
            assert body["at_ms"] == first["at_ms"] and body["age_s"] >= 0.25
            await asyncio.sleep(0.02)
    failed = [r for r in caplog.records if "supervisor figures: refresh failed" in r.message]
    assert len(failed) == 1 and failed[0].exc_info is not None


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


async def test_the_json_made_in_slices_is_the_json_made_at_once(
    service: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervisor_stats, "JSON_CHUNK", 2)  # slice the short lists too
    client = await service()
    for i in range(5):
        await store_of(client).join(f"CAw{i}", "general", info={"caller": f"+1555000{i:04d}"})
    await _abandon(client)
    figures = await sup_stats(client).figures()
    assert len(figures["agents"]) > 2 and len(figures["waiting_calls"]) == 5
    for role in ("supervisor", "viewer"):
        redacted = supervisor_stats.redact(figures, role)
        sliced = await supervisor_stats.json_chunked(redacted)
        assert sliced == supervisor_stats._json(redacted)
    odd = {"a": [1.5, "é\n", None, {"x": [1, 2, 3]}], "b": (), "c": {"d": "\u2028"}, "e": 7}
    assert await supervisor_stats.json_chunked(odd) == supervisor_stats._json(odd)


async def test_a_refresh_encodes_in_advance_the_roles_asked_for(service: ServiceFactory) -> None:
    client = await service()
    source = sup_stats(client)
    headers = {"Authorization": f"Bearer {VIEWER_TOKEN}", "Accept-Encoding": "identity"}
    assert (await client.get("/api/v1/stats", headers=headers)).status == 200
    _, encoded, gzipped = await source._fresh()
    assert set(encoded) == {"json:viewer"}
    assert gzipped == {}  # nobody asked for gzip (tests/supervisors/test_stats_gzip.py)


async def test_the_body_in_two_parts_is_one_json_document_with_its_length(
    service: ServiceFactory,
) -> None:
    client = await service()
    # aiohttp's client asks for gzip unless told otherwise: this is the identity body
    headers = {"Authorization": f"Bearer {VIEWER_TOKEN}", "Accept-Encoding": "identity"}
    for _ in range(2):  # computed for the request, then held
        resp = await client.get("/api/v1/stats", headers=headers)
        raw = await resp.read()
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/json")
        assert int(resp.headers["Content-Length"]) == len(raw)
        assert "Transfer-Encoding" not in resp.headers
        assert "Content-Encoding" not in resp.headers
        assert resp.headers["Vary"] == "Accept-Encoding"
        body = json.loads(raw)
        assert list(body)[-1] == "age_s" and body["role"] == "viewer"
