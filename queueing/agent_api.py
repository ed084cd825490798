"""The agent API: token-authenticated JSON to log in and out, go ready / not ready, end
wrap-up, and list agents with their state and time in state.

Authentication: a bearer token. An agent's own token (`token` in queues.yaml) acts on
that agent only; any other token goes through `config.apiauth.authorize`: role
"supervisor" may act on every agent, "viewer" may list. A token of role "agent" in the
settings that no agent in queues.yaml owns is refused (403): the API cannot tell whose it is.

Routes (all JSON):
  GET  /api/agents                      list (supervisor, viewer; an agent sees itself)
  GET  /api/agents/{agent_id}           one agent
  POST /api/agents/{agent_id}/login     {"ready": false}
  POST /api/agents/{agent_id}/logout
  POST /api/agents/{agent_id}/ready
  POST /api/agents/{agent_id}/not_ready {"reason": "lunch"}
  POST /api/agents/{agent_id}/end_wrap_up
  GET  /agent                           a plain agent page (static; it calls the API above
                                        with the agent's own token)
Errors: {"error": message, "field": name} with 400 (bad input), 401/403 (auth), 404
(unknown agent), 409 (transition refused, with "from" and "to").
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from aiohttp import web

from config.apiauth import authorize, json_error
from queueing.appkeys import QUEUE_ROUTER
from queueing.store import InvalidTransition, OpResult, QueueError, UnknownAgent

_REASON = re.compile(r"^[A-Za-z0-9_ .-]{1,64}$")


@dataclass(frozen=True)
class Caller:
    role: str
    agent_id: str | None  # set when the token is an agent's own


def _caller(request: web.Request, *roles: str) -> Caller:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        agent = request.app[QUEUE_ROUTER].store.config.agent_for_token(token)
        if agent is not None:
            return Caller(role="agent", agent_id=agent.id)
    principal = authorize(request, *roles)
    if principal.role == "agent":
        raise web.HTTPForbidden(
            text=json.dumps({"error": "this agent token belongs to no agent in queues.yaml"}),
            content_type="application/json",
        )
    return Caller(role=principal.role, agent_id=None)


def _target(request: web.Request, caller: Caller) -> str:
    agent_id = request.match_info["agent_id"]
    if caller.agent_id is not None and caller.agent_id != agent_id:
        raise web.HTTPForbidden(
            text=json.dumps({"error": "an agent may act on itself only", "field": "agent_id"}),
            content_type="application/json",
        )
    if agent_id not in request.app[QUEUE_ROUTER].store.config.agents:
        raise web.HTTPNotFound(
            text=json.dumps({"error": f"unknown agent '{agent_id}'", "field": "agent_id"}),
            content_type="application/json",
        )
    return agent_id


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "body must be a JSON object", "field": "body"}),
            content_type="application/json",
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "body must be a JSON object", "field": "body"}),
            content_type="application/json",
        )
    return data


async def _agent_json(request: web.Request, agent_id: str) -> dict[str, Any]:
    status = await request.app[QUEUE_ROUTER].store.agent(agent_id)
    return status.to_json()


async def _run(
    request: web.Request,
    action: Callable[[str, dict[str, Any]], Awaitable[OpResult]],
) -> web.Response:
    caller = _caller(request, "supervisor")
    agent_id = _target(request, caller)
    body = await _body(request)
    try:
        await action(agent_id, body)
    except InvalidTransition as exc:
        return json_error(
            409,
            f"agent '{agent_id}' cannot go from {exc.details.get('from')} to "
            f"{exc.details.get('to')}",
            field="state",
            **{"from": exc.details.get("from"), "to": exc.details.get("to")},
        )
    except UnknownAgent:
        return json_error(404, f"unknown agent '{agent_id}'", field="agent_id")
    except QueueError as exc:
        return json_error(409, exc.code, field="state")
    return web.json_response(await _agent_json(request, agent_id))


def _bad(field: str, message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=json.dumps({"error": message, "field": field}), content_type="application/json"
    )


async def login(request: web.Request) -> web.Response:
    async def act(agent_id: str, body: dict[str, Any]) -> OpResult:
        ready = body.get("ready", False)
        if not isinstance(ready, bool):
            raise _bad("ready", "field 'ready' must be true or false")
        return await request.app[QUEUE_ROUTER].login(agent_id, ready=ready)

    return await _run(request, act)


async def logout(request: web.Request) -> web.Response:
    async def act(agent_id: str, body: dict[str, Any]) -> OpResult:
        return await request.app[QUEUE_ROUTER].logout(agent_id)

    return await _run(request, act)


async def ready(request: web.Request) -> web.Response:
    async def act(agent_id: str, body: dict[str, Any]) -> OpResult:
        return await request.app[QUEUE_ROUTER].ready(agent_id)

    return await _run(request, act)


async def not_ready(request: web.Request) -> web.Response:
    async def act(agent_id: str, body: dict[str, Any]) -> OpResult:
        reason = body.get("reason", "busy")
        if not isinstance(reason, str) or not _REASON.match(reason):
            raise _bad("reason", "field 'reason' must be 1-64 letters, digits, spaces or _.-")
        return await request.app[QUEUE_ROUTER].not_ready(agent_id, reason)

    return await _run(request, act)


async def end_wrap_up(request: web.Request) -> web.Response:
    async def act(agent_id: str, body: dict[str, Any]) -> OpResult:
        return await request.app[QUEUE_ROUTER].end_wrap_up(agent_id)

    return await _run(request, act)


async def list_agents(request: web.Request) -> web.Response:
    caller = _caller(request, "supervisor", "viewer")
    agents = await request.app[QUEUE_ROUTER].store.agents()
    if caller.agent_id is not None:
        agents = [a for a in agents if a.agent_id == caller.agent_id]
    return web.json_response({"agents": [a.to_json() for a in agents]})


async def get_agent(request: web.Request) -> web.Response:
    caller = _caller(request, "supervisor", "viewer")
    agent_id = _target(request, caller)
    return web.json_response(await _agent_json(request, agent_id))


def _page_file(name: str) -> bytes:
    return resources.files("queueing").joinpath("agent_page", name).read_bytes()


_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_PAGE_FILES = {
    "agent.js": "text/javascript; charset=utf-8",
    "agent.css": "text/css; charset=utf-8",
}


async def agent_page(request: web.Request) -> web.Response:
    return web.Response(
        body=_page_file("index.html"),
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-cache",
            "Content-Security-Policy": _PAGE_CSP,
        },
    )


async def agent_static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in _PAGE_FILES:
        raise web.HTTPNotFound()
    return web.Response(
        body=_page_file(name),
        headers={"Content-Type": _PAGE_FILES[name], "Cache-Control": "no-cache"},
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get("/agent", agent_page),
        web.get("/agent/static/{name}", agent_static),
        web.get("/api/agents", list_agents),
        web.get("/api/agents/{agent_id}", get_agent),
        web.post("/api/agents/{agent_id}/login", login),
        web.post("/api/agents/{agent_id}/logout", logout),
        web.post("/api/agents/{agent_id}/ready", ready),
        web.post("/api/agents/{agent_id}/not_ready", not_ready),
        web.post("/api/agents/{agent_id}/end_wrap_up", end_wrap_up),
    ]


def add_routes(app: web.Application) -> None:
    app.add_routes(routes())
