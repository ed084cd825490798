"""The broadcaster's resumption ring stays small: the soak found the service's memory
growing for 15 minutes because the ring kept 60 full figures (each with the day's
abandoned callers and history) even with nobody listening, one every 15 s."""

from __future__ import annotations

import json

from queueing.supervisor_api import RING_S, SAMPLE_EVERY_S, StatsBroadcaster, encode_event
from tests.supervisors.conftest import ServiceFactory, store_of, sup_stats


async def test_the_ring_keeps_one_minute_of_events_only(service: ServiceFactory) -> None:
    client = await service()
    b = StatsBroadcaster(sup_stats(client))
    figures = await sup_stats(client).figures()
    for event_id in range(1000, 1000 + 60 * 60, int(SAMPLE_EVERY_S)):  # nobody listening
        b.remember(event_id, figures)
        assert len(b.ring) <= RING_S / SAMPLE_EVERY_S + 1
        assert b.ring[0][0] > event_id - RING_S
    for event_id in range(10_000, 10_600):  # somebody listening: one a second
        b.remember(event_id, figures)
        assert len(b.ring) <= RING_S and b.ring[0][0] > event_id - RING_S


async def test_unchanged_parts_are_shared_and_replay_is_unchanged(
    service: ServiceFactory,
) -> None:
    client = await service()
    store = store_of(client)
    for n in range(5):
        sid = f"CAring{n}"
        await store.join(sid, "general", info={"caller": f"+1555000{n:04d}"}, pair=False)
        await store.leave(sid)
    source = sup_stats(client)
    b = StatsBroadcaster(source)
    first = await source.figures()
    second = await source.figures()
    assert len(first["abandoned_today"]) == 5
    b.remember(1, first)
    b.remember(2, second)
    (_, kept1), (_, kept2) = b.ring
    assert kept2["abandoned_today"] is kept1["abandoned_today"]
    assert kept2["history"] is kept1["history"]
    # a replayed event is exactly the event as it was published
    for role in ("supervisor", "viewer"):
        replayed = dict(b.replay(0, role))
        assert replayed[2] == encode_event(2, second, role)
        data = json.loads(replayed[1].decode().split("data: ", 1)[1])
        assert len(data["abandoned_today"]) == 5
    # a part that changed is kept as it is
    await store.join("CAring9", "general", info={"caller": "+15550009999"}, pair=False)
    await store.leave("CAring9")
    third = await source.figures()
    b.remember(3, third)
    assert b.ring[-1][1]["abandoned_today"] is not kept2["abandoned_today"]
    assert b.ring[-1][1]["abandoned_today"][0]["call_sid"] == "CAring9"
