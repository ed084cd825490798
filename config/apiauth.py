"""Bearer-token authentication for the JSON APIs (agent, care team, supervisors)."""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass

from aiohttp import web

from config.runtime import SETTINGS

ROLES = frozenset({"supervisor", "viewer", "agent", "care"})


@dataclass(frozen=True)
class Principal:
    token_id: str  # the first 6 characters of the token: enough for logs, useless to an attacker
    role: str


def json_error(status: int, message: str, **extra: object) -> web.Response:
    body = {"error": message, **extra}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def authorize(request: web.Request, *roles: str) -> Principal:
    """The caller's principal if its bearer token has one of `roles`; otherwise raise 401/403."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": "missing bearer token"}),
            content_type="application/json",
            headers={"WWW-Authenticate": "Bearer"},
        )
    tokens = request.app[SETTINGS].api_tokens
    role = None
    for known, known_role in tokens.items():
        if hmac.compare_digest(known.encode(), token.encode()):
            role = known_role
    if role is None:
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": "unknown token"}),
            content_type="application/json",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if roles and role not in roles and role != "supervisor":
        raise web.HTTPForbidden(
            text=json.dumps({"error": f"role '{role}' may not do this"}),
            content_type="application/json",
        )
    return Principal(token_id=token[:6], role=role)
