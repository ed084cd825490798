"""Fixtures for the emulator's tests: a tiny TwiML service of our own (it checks every
webhook's signature with the twilio library's RequestValidator) and an emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from twilio.request_validator import RequestValidator

from emulator import CarrierEmulator

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "test-auth-token-123"

Handler = Callable[["Req"], Awaitable[str | web.StreamResponse] | str | web.StreamResponse]


@dataclass
class Req:
    path: str
    method: str
    params: dict[str, str]
    query: dict[str, str]
    signature_ok: bool
    url: str


@dataclass
class FakeService:
    """Serves TwiML per path; records every request and whether its signature held."""

    routes: dict[str, str | Handler] = field(default_factory=dict)
    requests: list[Req] = field(default_factory=list)
    base: str = ""

    def route(self, path: str, body: str | Handler) -> None:
        self.routes[path] = body

    def url(self, path: str) -> str:
        return self.base + path

    def at(self, path: str) -> list[Req]:
        return [r for r in self.requests if r.path == path]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        params = {k: str(v) for k, v in (await request.post()).items()}
        url = str(request.url)
        signature = request.headers.get("X-Twilio-Signature", "")
        ok = RequestValidator(AUTH_TOKEN).validate(url, params, signature)
        req = Req(request.path, request.method, params, dict(request.query), ok, url)
        self.requests.append(req)
        handler = self.routes.get(request.path)
        if handler is None:
            return web.Response(status=404, text="not found")
        if isinstance(handler, str):
            return web.Response(text=handler, content_type="text/xml")
        result = handler(req)
        if asyncio.iscoroutine(result):
            result = await result
        if isinstance(result, str):
            return web.Response(text=result, content_type="text/xml")
        assert isinstance(result, web.StreamResponse)
        return result


@pytest.fixture
async def service(aiohttp_server: Any) -> AsyncIterator[FakeService]:
    svc = FakeService()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", svc.handle)
    server: TestServer = await aiohttp_server(app)
    svc.base = str(server.make_url("")).rstrip("/")
    yield svc
    assert all(r.signature_ok for r in svc.requests), [
        r.url for r in svc.requests if not r.signature_ok
    ]


@pytest.fixture
async def emu() -> AsyncIterator[CarrierEmulator]:
    emulator = CarrierEmulator(ACCOUNT_SID, AUTH_TOKEN, speedup=100, webhook_timeout=2.0)
    try:
        yield emulator
    finally:
        await emulator.close()
    assert emulator.internal_errors == []


def twiml(body: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'


async def eventually(predicate: Callable[[], object], within_s: float = 10.0) -> None:
    """Poll until `predicate()` is truthy (real seconds)."""
    for _ in range(int(within_s / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")
