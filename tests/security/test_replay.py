"""Replayed Twilio requests cause no second effect.

Twilio's signature covers the URL and the form but no timestamp or nonce, so a captured
request stays valid forever: the protection is that every webhook's effect happens once
(step numbers in the URLs, idempotent joins, once-only status counting, a done record
per call). Each test replays a real signed request and checks Redis is unchanged.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from aiohttp import ClientSession

from config.keys import Keys
from emulator import AgentPhone, CallerScript
from ivr.appkeys import ROUTER
from tests.e2e.conftest import Line, line
from tests.ivr.walker import Walker
from tests.security.conftest import FullService
from tests.twilio_signing import call_params, call_sid, signature, signed_post

__all__ = ["line"]


async def snapshot(redis: aioredis.Redis, prefix: str) -> dict[str, Any]:
    """Every key under the prefix with its size (a second effect adds a key or an entry)."""
    sizes: dict[str, Any] = {}
    async for key in redis.scan_iter(match=prefix + "*", count=500):
        if key.startswith((prefix + "sup:daily:", prefix + "sup:samples:")):
            # the statistics broadcaster writes these on its own clock (its first roll-up can
            # land mid-test when the first tick is slow, as on a cluster); they are derived
            # from the counters, which are compared by value below
            continue
        kind = await redis.type(key)
        if kind == "hash":
            counters = "stat" in key  # counters: compare the values, not only the size
            sizes[key] = ("hash", await redis.hgetall(key) if counters else await redis.hlen(key))
        elif kind == "zset":
            sizes[key] = ("zset", await redis.zcard(key))
        elif kind == "list":
            sizes[key] = ("list", await redis.llen(key))
        elif kind == "set":
            sizes[key] = ("set", await redis.scard(key))
        elif kind == "string":
            sizes[key] = ("string", await redis.get(key))
        elif kind == "stream":
            sizes[key] = ("stream", await redis.xlen(key))
    return sizes


async def test_a_replayed_menu_step_joins_the_queue_once(
    full_service: FullService, redis: aioredis.Redis, keys: Keys
) -> None:
    client = await full_service()
    caller = Walker(client, call_sid(9000))
    await caller.start()
    await caller.press("2")
    action = caller.action()
    params = call_params(caller.sid, From=caller.from_number, Digits="0")
    first = await signed_post(client, action, params)
    body = await first.text()
    before = await snapshot(redis, keys.prefix)
    replies = await asyncio.gather(*(signed_post(client, action, params) for _ in range(5)))
    assert [await r.text() for r in replies] == [body] * 5
    assert await snapshot(redis, keys.prefix) == before
    router = client.server.app[ROUTER]  # type: ignore[attr-defined]
    snap = await router.stats.snapshot()
    assert snap["queues"]["general"]["today"]["offered"] == 1


async def test_concurrent_first_requests_of_one_call_make_one_session(
    full_service: FullService, redis: aioredis.Redis, keys: Keys
) -> None:
    client = await full_service()
    params = call_params(call_sid(9001))
    replies = await asyncio.gather(*(signed_post(client, "/voice", params) for _ in range(6)))
    bodies = {await r.text() for r in replies}
    assert len(bodies) == 1
    caller = Walker(client, call_sid(9001))
    await caller.start()
    await caller.press("2")
    await caller.press("0")
    before = await snapshot(redis, keys.prefix)
    # replaying the very first request mid-call does not restart the call
    again = await signed_post(client, "/voice", params)
    assert await again.text() in bodies
    assert await snapshot(redis, keys.prefix) == before


async def test_a_replayed_status_callback_counts_once(
    full_service: FullService, redis: aioredis.Redis, keys: Keys
) -> None:
    client = await full_service()
    caller = Walker(client, call_sid(9002))
    await caller.start()
    params = call_params(call_sid(9002), CallStatus="completed", CallDuration="12")
    for _ in range(4):
        assert (await signed_post(client, "/status", params)).status == 204
    # and out of order: a late "ringing" / "in-progress" after the end changes nothing
    before = await snapshot(redis, keys.prefix)
    for late in ("in-progress", "ringing"):
        late_params = call_params(call_sid(9002), CallStatus=late)
        response = await signed_post(client, "/status", late_params)
        assert response.status == 204
    assert await snapshot(redis, keys.prefix) == before
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    outcomes = await redis.hgetall(keys.call_outcomes(day))
    assert sum(int(v) for v in outcomes.values()) == 1


async def test_replayed_end_of_an_agent_call_opens_no_second_case_or_survey(
    line: Line, redis: aioredis.Redis, key_prefix: str
) -> None:
    """A complaint call answered by an agent: the <Dial action> replayed after the call."""
    line.emu.register_agent(AgentPhone(number="+15550100007", answer_after=1, handle_time=10))
    await line.router.login("a07", ready=True)
    call = await line.emu.place_inbound_call(
        voice_url=line.voice_url, from_="+8613812345678", to="+8640012345",
        script=CallerScript.of(["2", "4"]),
    )  # fmt: skip
    transcript = await call.wait_finished(30)
    assert transcript.outcome.answered_by == "+15550100007"
    for _ in range(100):  # wrap-up (1 s) ends and the agent is ready again
        if (await line.router.store.agent("a07")).state.value == "ready":
            break
        await asyncio.sleep(0.05)
    base = str(line.app[ROUTER].dispatcher._base)  # type: ignore[attr-defined]
    path = f"/queue/dialed?call={call.sid}&res=1&q=complaints&lang=en"
    params = {
        "CallSid": call.sid,
        "AccountSid": line.emu.account_sid,
        "DialCallStatus": "completed",
        "DialCallDuration": "10",
        "CallStatus": "in-progress",
    }
    before = await snapshot(redis, key_prefix)
    assert any(":case" in k for k in before), sorted(before)
    async with ClientSession() as http:
        for _ in range(3):
            url = base + path
            headers = {"X-Twilio-Signature": signature(url, params, token=line.emu.auth_token)}
            async with http.post(url, data=params, headers=headers) as response:
                assert response.status == 200
    assert await snapshot(redis, key_prefix) == before
