"""Sign-in, sessions, roles, CSRF and the sign-in rate limit, on the real service."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from config.keys import Keys
from tests.supervisors.conftest import (
    CARE_TOKEN,
    SUP_PASSWORD,
    VIEW_PASSWORD,
    VIEWER_TOKEN,
    ServiceFactory,
    origin,
    sign_in,
    store_of,
)

CALLBACK = {"phone": "+15551230001", "queue": "general", "kind": "queue_callback"}


async def test_sign_in_sets_a_strict_httponly_session_cookie(service: ServiceFactory) -> None:
    client = await service()
    resp = await client.post(
        "/login", json={"user": "sup", "password": SUP_PASSWORD}, headers={"Origin": origin(client)}
    )
    assert resp.status == 200
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("hl_session=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # PUBLIC_URL is http here
    body = await resp.json()
    assert body["role"] == "supervisor" and len(body["csrf_token"]) > 30
    me = await (await client.get("/api/v1/session")).json()
    assert me["user"] == "sup" and me["csrf_token"] == body["csrf_token"]
    assert (await client.get("/api/v1/stats")).status == 200


async def test_secure_cookie_when_public_url_is_https(service: ServiceFactory) -> None:
    client = await service(public_url="https://hotline.example.com")
    resp = await client.post(
        "/login", json={"user": "sup", "password": SUP_PASSWORD}, headers={"Origin": origin(client)}
    )
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("__Host-hl_session=") and "Secure" in cookie


async def test_form_sign_in_redirects_to_the_dashboard(service: ServiceFactory) -> None:
    client = await service()
    resp = await client.post(
        "/login", data={"user": "sup", "password": SUP_PASSWORD}, allow_redirects=False
    )
    assert resp.status == 302 and resp.headers["Location"] == "/dashboard"
    page = await client.get("/dashboard")
    assert page.status == 200 and "wallboard" in await page.text()
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


async def test_wrong_password_and_unknown_user_are_refused(service: ServiceFactory) -> None:
    client = await service()
    for user, password in (("sup", "wrong"), ("nobody", SUP_PASSWORD)):
        resp = await client.post("/login", json={"user": user, "password": password})
        assert resp.status == 401
        assert "Set-Cookie" not in resp.headers
    assert (await client.get("/api/v1/stats")).status == 401
    assert (await client.get("/dashboard", allow_redirects=False)).status == 302


async def test_sign_in_rate_limit_per_user(service: ServiceFactory) -> None:
    client = await service(per_user=3)
    for _ in range(3):
        assert (await client.post("/login", json={"user": "sup", "password": "x"})).status == 401
    # the right password no longer helps until the window passes
    resp = await client.post("/login", json={"user": "sup", "password": SUP_PASSWORD})
    assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0
    # another user is not locked out
    ok = await client.post("/login", json={"user": "view", "password": VIEW_PASSWORD})
    assert ok.status == 200


async def test_sign_in_rate_limit_per_client(service: ServiceFactory) -> None:
    client = await service(per_client=4, per_user=100)
    statuses = [
        (await client.post("/login", json={"user": f"u{i}", "password": "x"})).status
        for i in range(6)
    ]
    assert statuses == [401, 401, 401, 401, 429, 429]


async def test_session_expires(service: ServiceFactory) -> None:
    client = await service(ttl_s=1)
    await sign_in(client)
    assert (await client.get("/api/v1/stats")).status == 200
    await asyncio.sleep(1.3)
    assert (await client.get("/api/v1/stats")).status == 401
    assert (await client.get("/api/v1/session")).status == 401


async def test_logout_ends_the_session_everywhere(
    service: ServiceFactory, redis: aioredis.Redis, keys: Keys
) -> None:
    client = await service()
    csrf = await sign_in(client)
    assert [k async for k in redis.scan_iter(match=keys.sup_session("*"))]
    # without the CSRF token a cross-site page cannot sign the user out
    assert (await client.post("/logout", headers={"Origin": origin(client)})).status == 403
    resp = await client.post(
        "/logout",
        headers={"Origin": origin(client), "X-CSRF-Token": csrf, "Accept": "application/json"},
    )
    assert resp.status == 200
    assert not [k async for k in redis.scan_iter(match=keys.sup_session("*"))]
    assert (await client.get("/api/v1/stats")).status == 401


async def _abandon_one(client: Any, phone: str = "+15551234567") -> None:
    store = store_of(client)
    await store.join("CAviewer1", "general", info={"caller": phone})
    await store.leave("CAviewer1")


async def test_viewer_reads_masked_numbers_and_cannot_write(service: ServiceFactory) -> None:
    client = await service()
    await _abandon_one(client)
    store = store_of(client)
    await store.join("CAwaiting", "general", info={"caller": "+15559876543"})
    csrf = await sign_in(client, "view", VIEW_PASSWORD)
    figures = await (await client.get("/api/v1/stats")).json()
    assert figures["role"] == "viewer"
    (abandoned,) = figures["abandoned_today"]
    assert abandoned["number"] == "***4567" and "phone" not in abandoned
    (waiting,) = figures["waiting_calls"]
    assert waiting["number"] == "***6543" and "phone" not in waiting
    assert "5551234567" not in await (await client.get("/api/v1/stats")).text()
    resp = await client.post(
        "/api/v1/callbacks",
        json=CALLBACK,
        headers={"Origin": origin(client), "X-CSRF-Token": csrf},
    )
    assert resp.status == 403
    # a viewer token reads too, and is refused writes
    headers = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
    client.session.cookie_jar.clear()
    assert (await client.get("/api/v1/stats", headers=headers)).status == 200
    assert (await client.post("/api/v1/callbacks", json=CALLBACK, headers=headers)).status == 403


async def test_supervisor_sees_the_full_number_of_abandoned_callers(
    service: ServiceFactory,
) -> None:
    client = await service()
    await _abandon_one(client)
    await sign_in(client)
    figures = await (await client.get("/api/v1/stats")).json()
    (abandoned,) = figures["abandoned_today"]
    assert abandoned["phone"] == "+15551234567" and abandoned["number"] == "***4567"
    assert all("phone" not in c for c in figures["waiting_calls"])


async def test_csrf_token_and_origin_are_required_for_session_writes(
    service: ServiceFactory,
) -> None:
    client = await service()
    csrf = await sign_in(client)
    good = {"Origin": origin(client), "X-CSRF-Token": csrf}
    cases = [
        ({"Origin": origin(client)}, 403),  # no token
        ({"Origin": origin(client), "X-CSRF-Token": "forged"}, 403),  # wrong token
        ({"Origin": "https://evil.example", "X-CSRF-Token": csrf}, 403),  # cross-site
        ({"X-CSRF-Token": csrf}, 403),  # no Origin, no Referer
        ({"Referer": "https://evil.example/page", "X-CSRF-Token": csrf}, 403),
    ]
    for headers, status in cases:
        resp = await client.post("/api/v1/callbacks", json=CALLBACK, headers=headers)
        assert resp.status == status, (headers, await resp.text())
    resp = await client.post("/api/v1/callbacks", json=CALLBACK, headers=good)
    assert resp.status == 201, await resp.text()
    referer = {"Referer": f"{origin(client)}/dashboard", "X-CSRF-Token": csrf}
    resp = await client.post(
        "/api/v1/callbacks", json={**CALLBACK, "phone": "+15551230002"}, headers=referer
    )
    assert resp.status == 201
    # the listing (a read) needs no token; bearer tokens need none either
    assert (await client.get("/api/v1/callbacks")).status == 200
    client.session.cookie_jar.clear()
    bearer = {"Authorization": f"Bearer {CARE_TOKEN}"}
    resp = await client.post(
        "/api/v1/callbacks", json={**CALLBACK, "phone": "+15551230003"}, headers=bearer
    )
    assert resp.status == 201


async def test_cross_site_sign_in_is_refused(service: ServiceFactory) -> None:
    client = await service()
    resp = await client.post(
        "/login",
        json={"user": "sup", "password": SUP_PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert resp.status == 403
