"""/api/v1/stats, the event stream and /metrics against a scripted sequence of queue
events driven through queueing.store (real Redis, the real app)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from queueing.store import QueueStore
from queueing.supervisor_api import CLIENT_QUEUE_MAX, StatsBroadcaster, metrics_text
from tests.supervisors.conftest import (
    VIEWER_TOKEN,
    ServiceFactory,
    broadcaster,
    sign_in,
    store_of,
    sup_stats,
)

CALLER = {"caller": "+15550001111"}


async def _reservation(store: QueueStore, sid: str) -> int:
    raw = await store.redis.hget(store.keys.route_calls(store.group), sid)
    assert raw is not None
    return int(json.loads(raw)["res"])


async def script(store: QueueStore) -> dict[str, float]:
    """Queue 'complaints': target 1 s, short abandon 0.2 s; agents m1, m2 (and g3).
    Five calls: A short abandon; B abandons within target; C answered within target;
    D abandons after target; E answered after target. C completes; E is still talking.
    Returns the waits the scripts measured."""
    for sid in "ABCDE":
        await store.join(f"CA{sid}", "complaints", info={"caller": f"+1555000000{ord(sid) % 10}"})
    await store.leave("CAA")  # < 0.2 s: short abandon
    await asyncio.sleep(0.35)
    await store.leave("CAB")  # 0.35 s: abandoned within target
    await store.login("m1", ready=True)  # pairs C (waited ~0.35 s)
    ans_c = await store.answer("CAC", await _reservation(store, "CAC"))
    await asyncio.sleep(0.8)
    left_d = await store.leave("CAD")  # ~1.15 s: abandoned after target
    await store.login("m2", ready=True)  # pairs E (~1.15 s)
    ans_e = await store.answer("CAE", await _reservation(store, "CAE"))
    await asyncio.sleep(0.1)
    await store.complete("CAC")
    return {
        "C": ans_c.data["waited_ms"] / 1000,
        "E": ans_e.data["waited_ms"] / 1000,
        "D": left_d.data["waited_ms"] / 1000,
    }


async def test_stats_figures_match_the_scripted_sequence(service: ServiceFactory) -> None:
    client = await service()
    waits = await script(store_of(client))
    assert waits["C"] <= 1.0 < waits["E"] and waits["D"] > 1.0
    await sign_in(client)
    f = await (await client.get("/api/v1/stats")).json()
    q = f["queues"]["complaints"]
    assert (q["offered"], q["answered"], q["abandoned"], q["short_abandons"]) == (5, 2, 3, 1)
    assert q["answered_in_target"] == 1 and q["abandoned_after_target"] == 1
    # by hand: answered within T / (answered + abandoned after T) = 1 / (2 + 1)
    assert q["service_level"] == pytest.approx(1 / 3)
    assert q["abandon_rate"] == pytest.approx(3 / 5)
    assert q["asa_s"] == pytest.approx((waits["C"] + waits["E"]) / 2, abs=0.05)
    assert q["handled"] == 1 and q["aht_s"] is not None
    assert q["target_s"] == 1.0 and q["goal"] == 0.8
    assert q["waiting"] == 0 and q["longest_wait_s"] == 0
    assert q["agents_by_state"]["on_call"] == 1  # m2 talks to E
    assert q["staffing"]["calls_per_hour"] == 5 and "advice" in q["staffing"]
    c = f["centre"]
    assert (c["offered"], c["answered"], c["abandoned"]) == (5, 2, 3)
    assert c["service_level"] == pytest.approx(1 / 3)
    assert c["agents_by_state"]["on_call"] == 1
    assert [a["call_sid"] for a in f["abandoned_today"]] == ["CAD", "CAB", "CAA"]
    hist = f["wait_histogram"]
    assert hist["complaints:answered"]["count"] == 1  # C ended; E still on the line
    assert hist["complaints:abandoned"]["count"] == 3
    assert hist["complaints:abandoned"]["buckets"][0] == [5, 3]


async def test_waiting_now_and_longest_wait(service: ServiceFactory) -> None:
    client = await service()
    store = store_of(client)
    await store.join("CAW1", "general", info=CALLER)
    await store.join("CAW2", "general", priority=6, info=CALLER)
    await asyncio.sleep(0.3)
    await sign_in(client)
    f = await (await client.get("/api/v1/stats")).json()
    q = f["queues"]["general"]
    assert q["waiting"] == 2 and q["waiting_by_priority"] == {"6": 1, "2": 1}
    assert q["longest_wait_s"] >= 0.3
    assert q["ewt_new_caller_s"] is None  # nobody serving
    assert [c["call_sid"] for c in f["waiting_calls"]] == ["CAW2", "CAW1"]
    assert f["waiting_calls"][0]["number"] == "***1111"
    assert f["centre"]["waiting"] == 2


async def test_metrics_parse_and_agree_with_the_stats_api(service: ServiceFactory) -> None:
    client = await service()
    await script(store_of(client))
    headers = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
    text = await (await client.get("/metrics", headers=headers)).text()
    stats = await (await client.get("/api/v1/stats", headers=headers)).json()
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    for name, q in stats["queues"].items():
        lab = (("queue", name),)
        assert samples[("hotline_queue_offered_total", lab)] == q["offered"]
        assert samples[("hotline_queue_answered_total", lab)] == q["answered"]
        assert samples[("hotline_queue_abandoned_total", lab)] == q["abandoned"]
        assert samples[("hotline_queue_waiting", lab)] == q["waiting"]
        assert samples[("hotline_queue_longest_wait_seconds", lab)] == q["longest_wait_s"]
        for state, n in q["agents_by_state"].items():
            assert samples[("hotline_queue_agents", (("queue", name), ("state", state)))] == n
    assert samples[("hotline_queue_service_level", (("queue", "complaints"),))] == pytest.approx(
        1 / 3
    )
    for state, n in stats["centre"]["agents_by_state"].items():
        assert samples[("hotline_agents", (("state", state),))] == n
    ab = (("outcome", "abandoned"), ("queue", "complaints"))
    assert samples[("hotline_queue_wait_seconds_count", ab)] == 3
    assert samples[("hotline_queue_wait_seconds_bucket", (("le", "5.0"), *ab))] == 3
    assert samples[("hotline_queue_wait_seconds_bucket", (("le", "30.0"), *ab))] == 3
    assert samples[("hotline_queue_wait_seconds_bucket", (("le", "+Inf"), *ab))] == 3
    assert (await client.get("/metrics")).status == 401


async def _read_event(resp: Any, within_s: float = 5.0) -> tuple[int, dict[str, Any]]:
    event_id = None
    async with asyncio.timeout(within_s):
        while True:
            line = (await resp.content.readline()).decode().rstrip("\n")
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: ") and event_id is not None:
                return event_id, json.loads(line[6:])


async def test_stream_delivers_updates_and_resumes_with_last_event_id(
    service: ServiceFactory,
) -> None:
    client = await service()
    await sign_in(client)
    store = store_of(client)
    resp = await client.get("/api/v1/stats/stream")
    assert resp.status == 200 and resp.headers["Content-Type"] == "text/event-stream"
    first_id, first = await _read_event(resp)
    assert first["queues"]["general"]["waiting"] == 0
    await store.join("CASSE", "general", info=CALLER)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while True:
        event_id, figures = await _read_event(resp)
        assert event_id > first_id
        if figures["queues"]["general"]["waiting"] == 1:
            break
    latency = loop.time() - t0
    assert latency < 2.5, latency  # one update per second
    resp.close()
    # reconnect: events after Last-Event-ID only, then the stream goes on
    resp2 = await client.get("/api/v1/stats/stream", headers={"Last-Event-ID": str(first_id)})
    resumed_id, resumed = await _read_event(resp2)
    assert resumed_id > first_id
    later_id, _ = await _read_event(resp2)
    assert later_id > resumed_id
    resp2.close()
    # a Last-Event-ID from the future: nothing replayed, the next live event follows
    resp3 = await client.get("/api/v1/stats/stream", headers={"Last-Event-ID": str(later_id)})
    next_id, _ = await _read_event(resp3)
    assert next_id > later_id
    resp3.close()


async def test_a_client_that_never_reads_is_dropped(service: ServiceFactory) -> None:
    client = await service()
    b = StatsBroadcaster(sup_stats(client))  # not the app's running one: no ticks between
    sub = b.subscribe("viewer")
    figures = await sup_stats(client).figures()
    for i in range(CLIENT_QUEUE_MAX):
        b.publish(i + 1, figures)
    assert not sub.dropped and sub.queue.qsize() == CLIENT_QUEUE_MAX
    b.publish(CLIENT_QUEUE_MAX + 1, figures)
    assert sub.dropped and sub not in b.subscribers
    assert b.dropped_total == 1


async def test_metrics_text_is_valid_with_no_traffic(service: ServiceFactory) -> None:
    client = await service()
    figures = await sup_stats(client).figures()
    families = {f.name for f in text_string_to_metric_families(metrics_text(figures).decode())}
    assert {"hotline_queue_waiting", "hotline_agents", "hotline_queue_offered"} <= families


async def test_resume_on_another_process(service: ServiceFactory) -> None:
    """Two service instances on one Redis (two workers behind a balancer): an id from one
    resumes on the other, because event ids are Redis-clock seconds."""
    first = await service()
    second = await service()
    headers = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
    resp = await first.get("/api/v1/stats/stream", headers=headers)
    seen, _ = await _read_event(resp)
    resp.close()
    await store_of(first).join("CAmoved", "general", info=CALLER)
    resp2 = await second.get(
        "/api/v1/stats/stream", headers={**headers, "Last-Event-ID": str(seen)}
    )
    while True:
        event_id, figures = await _read_event(resp2)
        assert event_id > seen
        if figures["queues"]["general"]["waiting"] == 1:
            break
    resp2.close()


async def test_a_stalled_http_client_is_cut_off(
    service: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real connection that never reads: its queue fills, it is dropped, and the blocked
    write gives up after WRITE_TIMEOUT_S (shortened here) and aborts the connection:
    nothing piles up for it."""
    import contextlib
    import socket

    from queueing import supervisor_api

    monkeypatch.setattr(supervisor_api, "WRITE_TIMEOUT_S", 1.0)
    client = await service()
    b = broadcaster(client)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (client.host, client.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(
        f"GET /api/v1/stats/stream HTTP/1.1\r\nHost: {client.host}\r\n"
        f"Authorization: Bearer {VIEWER_TOKEN}\r\n\r\n".encode()
    )
    await writer.drain()
    for _ in range(500):
        if b.subscribers:
            break
        await asyncio.sleep(0.01)
    (sub,) = b.subscribers
    big = {**(await sup_stats(client).figures()), "pad": "x" * 256_000}
    for i in range(2000):  # the app's own ticks publish too
        if sub.dropped:
            break
        b.publish(10**12 + i, big)
        await asyncio.sleep(0.01)
    assert sub.dropped and sub not in b.subscribers and b.dropped_total >= 1
    # the handler is stuck writing to this client; past WRITE_TIMEOUT_S it aborts the
    # connection, so reading now ends (after the bytes already in flight) instead of
    # receiving a live stream
    await asyncio.sleep(2.5)
    received = 0
    async with asyncio.timeout(10):
        with contextlib.suppress(ConnectionResetError):
            while chunk := await reader.read(1 << 20):
                received += len(chunk)
    assert received < (CLIENT_QUEUE_MAX + 40) * len(json.dumps(big))
    writer.close()
