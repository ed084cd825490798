"""The Twilio REST redirect that connects a paired call fails, times out, or finds the call
gone (its hang-up callback was lost). The real TwilioDispatcher talks HTTP to a stub.

Where a retry is safe: a redirect refused with 429/503 (Twilio did not apply it) or whose
connection failed before the request went out is retried with backoff inside the lease.
Where it is not: a timeout or a 500 may have been applied, and creating an outbound call
twice dials the customer twice; those release the reservation at once (the call goes
back to its place, paired again by the next sweep) and are never retried blindly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer

from config.keys import Keys
from config.loader import HotlineConfig
from ivr.dispatch import TwilioDispatcher
from ivr.twilio_rest import TwilioRest
from queueing.router import Router
from queueing.store import QueueStore
from tests.ivr.conftest import with_calendar
from tests.twilio_signing import ACCOUNT_SID, AUTH_TOKEN, call_sid

AGENT = "a02"  # a general agent of the demo configuration


@dataclass
class StubRest:
    """Twilio's Calls/{sid}.json: answers from a script of behaviours, then 200."""

    script: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    async def update(self, request: web.Request) -> web.Response:
        self.requests.append(request.match_info["sid"])
        await request.post()
        step = self.script.pop(0) if self.script else "ok"
        if step == "hang":
            await asyncio.sleep(5)
        if step == "404":  # what a wrong account SID or API base answers
            body = {"code": 20404, "message": "not found", "status": 404}
            return web.json_response(body, status=404)
        if step in {"503", "429", "500"}:
            return web.json_response(
                {"code": 20003, "message": step, "status": int(step)}, status=int(step)
            )
        if step == "gone":
            body = {
                "code": 21220,
                "message": "Call is not in-progress. Cannot redirect.",
                "status": 400,
            }
            return web.json_response(body, status=400)
        sid = request.match_info["sid"]
        return web.json_response({"sid": sid, "status": "in-progress", "account_sid": ACCOUNT_SID})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{acc}/Calls/{sid}.json", self.update)
        return app


Rig = Callable[[list[str]], Awaitable[tuple[Router, StubRest]]]


@pytest.fixture
async def rig(redis: aioredis.Redis, keys: Keys, demo_config: HotlineConfig) -> AsyncIterator[Rig]:
    servers: list[TestServer] = []
    rests: list[TwilioRest] = []

    async def build(script: list[str]) -> tuple[Router, StubRest]:
        stub = StubRest(script=list(script))
        server = TestServer(stub.app())
        await server.start_server()
        servers.append(server)
        rest = TwilioRest(ACCOUNT_SID, AUTH_TOKEN, api_base=str(server.make_url("")), timeout_s=0.5)
        rests.append(rest)
        config = with_calendar(demo_config, open_=True)
        dispatcher = TwilioDispatcher(
            rest,
            base_url="https://hotline.bank.test",
            ring_timeout_s=25,
            default_lang="en",
            callback_caller_id="+8640012345",
        )
        return Router(QueueStore(redis, keys, config.queues), dispatcher), stub

    try:
        yield build
    finally:
        for rest in rests:
            await rest.aclose()
        for server in servers:
            await server.close()


async def pair_one(router: Router, n: int) -> str:
    sid = call_sid(n)
    await router.join(sid, "general")
    await router.login(AGENT, ready=True)
    await router.drain()
    return sid


@pytest.mark.parametrize("refusal", ["503", "429"])
async def test_a_refused_redirect_is_retried_with_backoff(rig: Rig, refusal: str) -> None:
    router, stub = await rig([refusal, refusal])
    sid = await pair_one(router, 8000)
    assert stub.requests == [sid] * 3
    assert router.dispatched_count == 1 and router.failed_count == 0
    status = await router.store.call_status(sid)
    assert status is not None and status.state == "ringing"


@pytest.mark.parametrize("failure", ["hang", "500", "404"])
async def test_a_redirect_that_may_have_landed_is_not_retried_but_released(
    rig: Rig, failure: str
) -> None:
    router, stub = await rig([failure])
    sid = await pair_one(router, 8100)
    assert stub.requests == [sid]  # exactly one attempt
    assert router.failed_count == 1
    status = await router.store.call_status(sid)
    assert status is not None and status.state == "waiting"  # back in its place
    agent = await router.store.agent(AGENT)
    assert agent.state.value == "ready"
    await router.run_once()  # the next sweep pairs it again, and this time it goes through
    await router.drain()
    assert stub.requests == [sid, sid]
    status = await router.store.call_status(sid)
    assert status is not None and status.state == "ringing"


async def test_a_call_that_is_gone_leaves_the_queue_instead_of_churning(rig: Rig) -> None:
    """The caller hung up and the callback saying so was lost: Twilio answers 21220."""
    router, stub = await rig(["gone"] * 10)
    sid = await pair_one(router, 8200)
    for _ in range(3):
        await router.run_once()
        await router.drain()
    assert stub.requests == [sid]  # not paired again and again
    status = await router.store.call_status(sid)
    assert status is None or status.state not in {"waiting", "reserved", "ringing"}
    agent = await router.store.agent(AGENT)
    assert agent.state.value == "ready"
