"""A media stream whose peer stops reading never blocks the handler past its write timeout."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time
from typing import Any

import pytest
from aiohttp import web

from ivr import voice


async def test_a_peer_that_stops_reading_is_given_up(
    aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(voice, "WRITE_TIMEOUT_S", 0.5)
    outcome: dict[str, float | bool] = {}

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        link = voice._Link(ws, idle_s=30)
        frame = "x" * 64_000
        started = time.monotonic()
        for _ in range(2_000):  # 128 MB: far more than any socket buffer holds
            await link.send(frame)
            if link.closed:
                break
        outcome["closed"] = link.closed
        outcome["seconds"] = time.monotonic() - started
        return ws

    app = web.Application()
    app.router.add_get("/media", handler)
    server = await aiohttp_server(app)

    # A peer that completes the upgrade, then never reads again (tiny receive buffer).
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /media HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    try:
        for _ in range(100):
            if "closed" in outcome:
                break
            await asyncio.sleep(0.1)
        assert outcome.get("closed") is True
        assert float(outcome["seconds"]) < 5.0
    finally:
        sock.close()
