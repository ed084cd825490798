"""/voice stores a new call in one round trip (advance.lua with expected seq -1) when its
first step does no I/O, and still answers a repeat from the stored step with no second
effect; a first step that does I/O (a queue join) reads the session first."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

from config.keys import Keys
from config.loader import HotlineConfig
from hotline.app import create_app
from ivr import engine
from ivr.accounts import FileAccountBackend
from ivr.appkeys import FLOW_DEPS, SESSIONS
from ivr.sessions import NEW_CALL
from ivr.webhooks import pure_first_step
from tests.ivr.conftest import AppFactory, make_settings, with_calendar
from tests.twilio_signing import call_params, call_sid, signed_post


async def state(redis: aioredis.Redis, prefix: str) -> dict[str, Any]:
    """Every key of the test with its content, but the supervisors' figures (sampled in
    the background, on their own clock)."""
    out: dict[str, Any] = {}
    async for key in redis.scan_iter(match=prefix + "*", count=500):
        if key.startswith(prefix + "sup:"):
            continue
        kind = await redis.type(key)
        if kind == "hash":
            out[key] = await redis.hgetall(key)
        elif kind == "zset":
            out[key] = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "string":
            out[key] = await redis.get(key)
        else:
            out[key] = kind
    return out


async def test_the_demo_first_step_is_stored_without_reading_first(
    service: AppFactory, redis: aioredis.Redis, keys: Keys
) -> None:
    client = await service()
    deps = client.server.app[FLOW_DEPS]  # type: ignore[attr-defined]
    sid = call_sid(4100)
    assert pure_first_step(deps, engine.new_session(deps.flow, sid, "+8613800000000"))
    first = await signed_post(client, "/voice", call_params(sid))
    body = await first.text()
    assert first.status == 200 and "<Gather" in body
    before = await state(redis, keys.prefix)
    assert before[keys.call_session(sid)]["seq"] == "0"
    replies = await asyncio.gather(
        *(signed_post(client, "/voice", call_params(sid)) for _ in range(4))
    )
    assert [await r.text() for r in replies] == [body] * 4
    assert await state(redis, keys.prefix) == before


async def test_advance_for_a_new_call_refuses_an_existing_session(
    service: AppFactory, keys: Keys
) -> None:
    client = await service()
    app = client.server.app  # type: ignore[attr-defined]
    sessions = app[SESSIONS]
    session = engine.new_session(app[FLOW_DEPS].flow, call_sid(4101), "+8613800000001")
    assert await sessions.advance(NEW_CALL, session, "<Response>first</Response>") == (True, None)
    again = await sessions.advance(NEW_CALL, session, "<Response>second</Response>")
    assert again == (False, "<Response>first</Response>")
    stored = await sessions.load(session.call_sid)
    assert stored is not None and stored.seq == 0


async def test_a_first_step_that_joins_a_queue_joins_once_when_repeated(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]],  # type: ignore[type-arg]
    redis_url: str,
    key_prefix: str,
    demo_config: HotlineConfig,
    accounts: FileAccountBackend,
    redis: aioredis.Redis,
    keys: Keys,
) -> None:
    config = with_calendar(demo_config, open_=True)
    config = dataclasses.replace(config, flow=dataclasses.replace(config.flow, start="agent"))
    client = await aiohttp_client(
        create_app(make_settings(redis_url, key_prefix), config, accounts, run_workers=False)
    )
    deps = client.server.app[FLOW_DEPS]  # type: ignore[attr-defined]
    sid = call_sid(4102)
    assert pure_first_step(deps, engine.new_session(deps.flow, sid, "+8613800000002")) is None
    first = await signed_post(client, "/voice", call_params(sid))
    body = await first.text()
    assert "<Enqueue" in body
    before = await state(redis, keys.prefix)
    replies = await asyncio.gather(
        *(signed_post(client, "/voice", call_params(sid)) for _ in range(4))
    )
    assert [await r.text() for r in replies] == [body] * 4
    assert await state(redis, keys.prefix) == before
