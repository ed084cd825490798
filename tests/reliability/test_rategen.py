"""bench/rategen.c, the constant-rate load generator of the benchmarks (through
bench.loadgen.constant_rate_c): compiled, run for 1 s against a tiny aiohttp server, its
counts, bad-status and bad-body detection (binary expect bytes with a NUL) and latencies."""

from __future__ import annotations

import asyncio
import shutil

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bench.loadgen import build_rategen, constant_rate_c

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is missing")

EXPECT = b"\x1f\x8b\x00<ok>"  # binary, with a NUL: passed to the C program as hex
SLOW_S = 0.05


async def ok(_request: web.Request) -> web.Response:
    return web.Response(body=b"head " + EXPECT + b" tail")


async def wrong_body(_request: web.Request) -> web.Response:
    return web.Response(body=b"\x1f\x8b<ok>")  # the NUL is missing


async def unavailable(_request: web.Request) -> web.Response:
    return web.Response(status=503, body=EXPECT)


async def slow(_request: web.Request) -> web.Response:
    await asyncio.sleep(SLOW_S)
    return web.Response(body=EXPECT)


async def big(_request: web.Request) -> web.Response:
    return web.Response(body=b"x" * 300_000 + EXPECT)  # more than the 64 KB read buffer


def request(path: str, port: int) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


async def test_counts_bad_answers_and_latency() -> None:
    assert build_rategen() is not None
    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/wrong", wrong_body)
    app.router.add_get("/unavailable", unavailable)
    app.router.add_get("/slow", slow)
    app.router.add_get("/big", big)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        assert server.port is not None
        port = server.port
        rate, duration = 200.0, 1.0
        # every 10th request: 1 wrong body, 1 status 503, 1 slow, 1 big, 6 good
        cycle = ["/wrong", "/unavailable", "/slow", "/big"] + ["/ok"] * 6
        paths = [cycle[i % len(cycle)] for i in range(int(rate * duration))]
        result = await constant_rate_c(
            "127.0.0.1",
            port,
            [request(p, port) for p in paths],
            rate=rate,
            duration_s=duration,
            connections=8,
            expect=EXPECT,
        )
    finally:
        await server.close()
    assert result.errors == 0
    assert result.sent == len(paths) == len(result.latencies_s) == 200
    assert result.bad_body == paths.count("/wrong") == 20
    assert result.bad_status == paths.count("/unavailable") == 20
    assert result.duration_s == pytest.approx(1.0)
    # the slow answers are the slowest 10 %; latency counts from the scheduled time
    lat = sorted(result.latencies_s)
    assert all(x >= 0 for x in lat)
    assert lat[-20] >= SLOW_S  # at least the 20 slow ones
    assert result.percentile(50) < SLOW_S <= result.percentile(99) <= max(lat)
    assert result.late_starts < 50  # 8 connections are plenty at 200/s (slack for a busy CI)


async def test_missing_pool_is_refused() -> None:
    with pytest.raises(ValueError, match="need 100 requests"):
        await constant_rate_c("127.0.0.1", 1, [b"x"], rate=100.0, duration_s=1.0)
