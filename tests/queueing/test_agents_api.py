"""The agent API over HTTP: tokens, self vs supervisor, transitions, field errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

from config.keys import Keys
from config.runtime import SETTINGS
from config.settings import Settings
from queueing.agent_api import add_routes
from queueing.appkeys import QUEUE_ROUTER
from queueing.router import Router
from queueing.store import Pairing
from tests.queueing.test_store_support import make_store

SUP = {"Authorization": "Bearer sup-token-123456"}
VIEW = {"Authorization": "Bearer view-token-123456"}
G1 = {"Authorization": "Bearer token-g1-000000"}
ORPHAN = {"Authorization": "Bearer orphan-agent-token"}

Client = TestClient[Any, Any]


class NullDispatcher:
    async def connect(self, pairing: Pairing) -> None:
        return None


@pytest.fixture
async def client(
    redis: aioredis.Redis,
    keys: Keys,
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
) -> Client:
    store = make_store(redis, keys)
    await store.sync_clock()
    app = web.Application()
    app[SETTINGS] = Settings(
        api_tokens={
            "sup-token-123456": "supervisor",
            "view-token-123456": "viewer",
            "orphan-agent-token": "agent",
        }
    )
    app[QUEUE_ROUTER] = Router(store, NullDispatcher())
    add_routes(app)
    return await aiohttp_client(app)


async def test_agent_logs_in_goes_ready_and_not_ready(client: Client) -> None:
    r = await client.post("/api/agents/g1/login", json={"ready": False}, headers=G1)
    assert r.status == 200
    body = await r.json()
    assert body["state"] == "not_ready" and body["reason"] == "login"
    r = await client.post("/api/agents/g1/ready", headers=G1)
    assert (await r.json())["state"] == "ready"
    r = await client.post("/api/agents/g1/not_ready", json={"reason": "lunch"}, headers=G1)
    body = await r.json()
    assert body["state"] == "not_ready" and body["reason"] == "lunch"
    assert body["time_in_state_s"] >= 0
    r = await client.post("/api/agents/g1/logout", headers=G1)
    assert (await r.json())["state"] == "offline"


async def test_agent_acts_on_itself_only(client: Client) -> None:
    r = await client.post("/api/agents/g2/login", headers=G1)
    assert r.status == 403 and (await r.json())["field"] == "agent_id"
    r = await client.get("/api/agents", headers=G1)
    assert [a["id"] for a in (await r.json())["agents"]] == ["g1"]


async def test_supervisor_and_viewer(client: Client) -> None:
    r = await client.post("/api/agents/g2/login", json={"ready": True}, headers=SUP)
    assert r.status == 200 and (await r.json())["state"] == "ready"
    r = await client.get("/api/agents", headers=VIEW)
    agents = {a["id"]: a for a in (await r.json())["agents"]}
    assert agents["g2"]["state"] == "ready" and agents["g1"]["state"] == "offline"
    r = await client.post("/api/agents/g2/logout", headers=VIEW)
    assert r.status == 403
    r = await client.get("/api/agents/g2", headers=VIEW)
    assert (await r.json())["state"] == "ready"


async def test_auth_errors(client: Client) -> None:
    assert (await client.get("/api/agents")).status == 401
    bad = {"Authorization": "Bearer wrong-token"}
    assert (await client.get("/api/agents", headers=bad)).status == 401
    assert (await client.get("/api/agents", headers=ORPHAN)).status == 403


async def test_invalid_transition_is_409_naming_states(client: Client) -> None:
    r = await client.post("/api/agents/g1/end_wrap_up", headers=SUP)
    assert r.status == 409
    body = await r.json()
    assert body["field"] == "state" and body["from"] == "offline" and body["to"] == "ready"
    r = await client.post("/api/agents/g1/login", headers=SUP)
    r = await client.post("/api/agents/g1/login", headers=SUP)
    assert r.status == 409 and (await r.json())["from"] == "not_ready"


async def test_bad_input_names_the_field(client: Client) -> None:
    await client.post("/api/agents/g1/login", headers=SUP)
    r = await client.post("/api/agents/g1/not_ready", json={"reason": 5}, headers=SUP)
    assert r.status == 400 and (await r.json())["field"] == "reason"
    r = await client.post("/api/agents/g1/login", json={"ready": "yes"}, headers=SUP)
    assert r.status == 400 and (await r.json())["field"] == "ready"
    r = await client.post(
        "/api/agents/g1/ready",
        data=b"{not json",
        headers={**SUP, "Content-Type": "application/json"},
    )
    assert r.status == 400 and (await r.json())["field"] == "body"
    r = await client.post("/api/agents/zz/ready", headers=SUP)
    assert r.status == 404 and (await r.json())["field"] == "agent_id"


async def test_ready_over_http_pairs_a_waiting_call(client: Client) -> None:
    router = client.app[QUEUE_ROUTER]
    await router.join("CA1", "general")
    await client.post("/api/agents/g1/login", json={"ready": True}, headers=G1)
    r = await client.get("/api/agents/g1", headers=G1)
    body = await r.json()
    assert body["state"] == "reserved" and body["call_sid"] == "CA1"


async def test_plain_agent_page_is_served(client: Client) -> None:
    page = await client.get("/agent")
    assert page.status == 200 and "text/html" in page.headers["Content-Type"]
    assert "/agent/static/agent.js" in await page.text()
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    script = await client.get("/agent/static/agent.js")
    assert script.status == 200 and "/api/agents" in await script.text()
    assert (await client.get("/agent/static/agent.css")).status == 200
    assert (await client.get("/agent/static/index.html")).status == 404
