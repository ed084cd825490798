"""Redis killed (SIGKILL) and restarted during traffic, with AOF (appendfsync everysec).

While Redis is away every webhook still answers valid TwiML: new and menu callers get the
emergency path, callers on hold stay on hold (their place is kept), /readyz says 503.
When Redis is back the same service (no restart) reconnects by itself, and the queue,
the scheduled jobs and the survey answers written before the crash are all there.

`appendfsync everysec` may lose up to about one second of acknowledged writes on a crash
(see bench/aof_window.py and docs/OPERATIONS.md); the test lets 1.5 s pass between the
last write it checks and the kill, as the documented guarantee allows.
"""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from callbacks.appkeys import CALLBACKS
from callbacks.jobs import JobKind, NewJob
from callbacks.surveys_store import SurveyAnswer
from ivr.appkeys import ROUTER
from tests.ivr.walker import Walker
from tests.reliability.conftest import ServiceFactory, app_of
from tests.reliability.redis_proc import RedisProc
from tests.twilio_signing import call_params, call_sid, signed_post

# Verbs Twilio accepts in an <Enqueue waitUrl> document.
WAIT_URL_VERBS = {"Say", "Play", "Pause", "Gather", "Redirect", "Leave", "Hangup"}


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProc]:
    server = RedisProc(tmp_path / "redis", fsync="everysec")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def post(client: TestClient, path: str, sid: str, **extra: str) -> ET.Element:  # type: ignore[type-arg]
    response = await signed_post(client, path, call_params(sid, **extra))
    assert response.status == 200, await response.text()
    assert response.content_type == "application/xml"
    root = ET.fromstring(await response.text())
    assert root.tag == "Response"
    return root


async def test_redis_killed_and_restarted_mid_traffic_loses_nothing(
    service_with: ServiceFactory, own_redis: RedisProc
) -> None:
    client = await service_with(redis_url=own_redis.url, emergency_number="+8610950000")
    app = app_of(client)
    router = app[ROUTER]
    callbacks = app[CALLBACKS]

    # --- traffic before the crash: callers queued, callers in menus, a job, an answer ---
    queued = []
    for n in range(3):
        caller = Walker(client, call_sid(7000 + n))
        await caller.start()
        await caller.press("2")
        await caller.press("0")
        assert await caller.enqueued() == "general"
        queued.append(caller)
    in_menu = []
    for n in range(2):
        caller = Walker(client, call_sid(7100 + n))
        await caller.start()
        await caller.press("2")
        in_menu.append(caller)
    now_ms = int(time.time() * 1000)
    job = await callbacks.store.create(
        NewJob(kind=JobKind.CARE_FOLLOW_UP, phone="+8613900001111", due_ms=now_ms + 3_600_000)
    )
    assert await callbacks.surveys.record(
        SurveyAnswer(call_sid=call_sid(7200), answered_ms=now_ms, score=4, queue="general")
    )
    await asyncio.sleep(1.5)  # past the everysec fsync of the writes checked below

    # --- Redis dies (SIGKILL, no final fsync) ------------------------------------------
    own_redis.kill()
    for caller in in_menu:  # a key pressed in a menu: the emergency path
        root = await post(client, caller.action(), caller.sid, Digits="1")
        assert root.find("Dial") is not None and root.find("Say") is not None
    root = await post(client, "/voice", call_sid(7300))  # a new call: the emergency path
    assert root.find("Dial") is not None
    for caller in queued:  # on hold: still on hold, only verbs valid in a waitUrl
        root = await post(client, "/queue/hold?lang=en&q=general", caller.sid)
        assert {child.tag for child in root} <= WAIT_URL_VERBS, ET.tostring(root)
        assert root.find("Play") is not None or root.find("Pause") is not None
    status = await signed_post(
        client, "/status", call_params(call_sid(7301), CallStatus="completed")
    )
    assert status.status in {200, 204}
    assert (await client.get("/readyz")).status == 503

    # --- Redis comes back on the same AOF; the service was never restarted -------------
    own_redis.start()
    for _ in range(50):
        if (await client.get("/readyz")).status == 200:
            break
        await asyncio.sleep(0.1)
    assert (await client.get("/readyz")).status == 200

    positions = [await router.wait_info(c.sid) for c in queued]
    assert [(i.position, i.state) if i else None for i in positions] == [
        (1, "waiting"),
        (2, "waiting"),
        (3, "waiting"),
    ]
    stored_job = await callbacks.store.get(job.id)
    assert stored_job is not None and stored_job.phone == "+8613900001111"
    answer = await callbacks.surveys.get(call_sid(7200))
    assert answer is not None and answer.score == 4
    root = await post(client, "/queue/hold?lang=en&q=general", queued[0].sid)
    assert any("number 1" in (s.text or "") for s in root.iter("Say"))
    fresh = Walker(client, call_sid(7400))  # a new call runs the menus again
    await fresh.start()
    assert fresh.gather_node() == "language"
    await router.run_once()  # the sweeper works again (Lua scripts reloaded after restart)
