"""Every route that changes something refuses a request without credentials: Twilio's
webhooks (and the media-stream upgrade) answer 403 without a valid X-Twilio-Signature,
the JSON APIs 401 without a token or session. The routes are read from app.router, so a
route added later without a check fails here."""

from __future__ import annotations

import re

from aiohttp import web

from tests.security.conftest import FullService
from tests.twilio_signing import call_params, call_sid

# Paths that are not Twilio's. Everything else that accepts a POST is a Twilio webhook.
API = re.compile(r"^/api/")
SIGN_IN = {"/login", "/logout"}
PUBLIC_GET = re.compile(
    r"^/(healthz|readyz|login|dashboard|agent|static/hold|prompts|api/v1/openapi\.json)"
)
PLACEHOLDERS = {
    "node": "main",
    "agent_id": "a01",
    "id": "cb_0123456789",
    "phone": "+8613812345678",
    "name": "general",
}
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PLACEHOLDERS.get(m.group(1), "x"), path)


def routes(app: web.Application) -> list[tuple[str, str]]:
    found = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = str(info.get("path") or info.get("formatter") or "")
        if path:
            found.append((route.method, path))
    return found


async def test_every_route_without_credentials_is_refused(full_service: FullService) -> None:
    client = await full_service()
    assert client.server.app is not None  # type: ignore[attr-defined]
    table = routes(client.server.app)  # type: ignore[attr-defined]
    assert ("GET", "/media") in table, "the media-stream upgrade is not wired"
    checked: list[str] = []
    for method, template in table:
        path = concrete(template)
        if method in MUTATING:
            if template in SIGN_IN:
                response = await client.request(
                    method, path, data={"username": "x", "password": "y"}, allow_redirects=False
                )
                # refused, or sent back to the sign-in page; never a session
                assert response.status in {302, 303, 400, 401, 403}, (method, path, response.status)
                if response.status in {302, 303}:
                    assert response.headers["Location"].startswith("/login")
                assert not any(
                    "session" in c.lower() and "max-age=0" not in c.lower()
                    for c in response.headers.getall("Set-Cookie", [])
                ), response.headers
            elif API.match(template):
                response = await client.request(method, path, json={})
                assert response.status == 401, (method, path, response.status)
            else:  # a Twilio webhook: unsigned, with a plausible form
                response = await client.request(
                    method,
                    path + "?s=0&q=general&call=" + call_sid(1) + "&res=1",
                    data=call_params(call_sid(1), Digits="1"),
                )
                assert response.status == 403, (method, path, response.status)
            checked.append(f"{method} {template}")
        elif method == "GET" and API.match(template) and not PUBLIC_GET.match(template):
            response = await client.get(path)
            assert response.status == 401, (method, path, response.status)
            checked.append(f"{method} {template}")
    # the media-stream upgrade: a websocket handshake without a signature
    response = await client.get(
        "/media?call=" + call_sid(1),
        headers={
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    )
    assert response.status == 403
    assert len(checked) >= 30, checked


async def test_a_forged_signature_on_every_twilio_route_is_refused(
    full_service: FullService,
) -> None:
    client = await full_service()
    for method, template in routes(client.server.app):  # type: ignore[attr-defined]
        if method != "POST" or API.match(template) or template in SIGN_IN:
            continue
        response = await client.post(
            concrete(template),
            data=call_params(call_sid(2)),
            headers={"X-Twilio-Signature": "bm90IGEgcmVhbCBzaWduYXR1cmU="},
        )
        assert response.status == 403, template
