"""GET /api/v1/stats and /metrics gzipped when the request accepts gzip: the body is
compressed once per snapshot and role (in a thread) and each request's `age_s` ends the
same gzip stream in a stored block, so the age stays exact and the compressed bytes
shared; without gzip the bytes are today's."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from typing import Any

import aiohttp
import pytest

from queueing import supervisor_stats
from queueing.supervisor_api import accepts_gzip
from queueing.supervisor_stats import GzipHead, gzip_head, gzip_tail
from tests.supervisors.conftest import (
    VIEWER_TOKEN,
    ServiceFactory,
    sign_in,
    store_of,
    sup_stats,
)

VIEWER = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
GZIP = {"Accept-Encoding": "gzip, deflate, br"}
IDENTITY = {"Accept-Encoding": "identity"}


@pytest.mark.parametrize(
    ("field", "gzip_ok"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.8, *;q=0.1", True),
        ("deflate, gzip ; q=0.001", True),
        ("gzip;q=0", False),
        ("gzip;q=0.000", False),
        ("gzip; q=0, *", False),  # refused by name: `*` does not bring it back
        ("*", True),
        ("*;q=0.5", True),
        ("*;q=0", False),
        ("identity", False),
        ("deflate, br", False),
        ("", False),
        (" , ,", False),
        ("gzip;q=2", False),  # malformed weights count as 0
        ("gzip;q=nan", False),
        ("gzip;q=0.0001", False),
        ("gzip;q=", False),
        ("gzip;level=1", True),  # other parameters do not matter
        ("gzip;q=1.000", True),
    ],
)
def test_accept_encoding(field: str, gzip_ok: bool) -> None:
    assert accepts_gzip(field) is gzip_ok


@pytest.mark.parametrize("level", [1, 6, 9])
@pytest.mark.parametrize(
    ("data", "tail"),
    [
        (b"", b""),
        (b"{", b',"age_s":0.000}'),
        (json.dumps({"x": list(range(30_000))}).encode()[:-1], b',"age_s":1.234}'),
        (bytes(range(256)) * 500, b"\x00" * 65_535),
    ],
)
def test_a_gzip_head_and_tail_are_one_gzip_member(level: int, data: bytes, tail: bytes) -> None:
    head = gzip_head(data, level)
    stream = head.body + gzip_tail(head, tail)
    assert gzip.decompress(stream) == data + tail
    one = zlib.decompressobj(31)  # a single member, nothing after it
    assert one.decompress(stream) == data + tail and one.eof and one.unused_data == b""


def test_a_tail_past_one_stored_block_is_refused() -> None:
    with pytest.raises(ValueError):
        gzip_tail(gzip_head(b"{"), b"x" * 65_536)


async def _raw(
    client: Any, path: str, headers: dict[str, str]
) -> tuple[aiohttp.ClientResponse, bytes]:
    """The response's bytes as sent (the test client would decode them)."""
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(client.make_url(path), headers=headers) as resp,
    ):
        return resp, await resp.read()


async def _abandon(client: Any) -> None:
    store = store_of(client)
    await store.join("CAgone", "general", info={"caller": "+15551234567"})
    await store.leave("CAgone")


async def test_gzip_asked_gets_the_same_json_compressed(service: ServiceFactory) -> None:
    client = await service()
    for i in range(5):
        await store_of(client).join(f"CAw{i}", "general", info={"caller": f"+1555000{i:04d}"})
    plain_resp, plain_raw = await _raw(client, "/api/v1/stats", {**VIEWER, **IDENTITY})
    resp, raw = await _raw(client, "/api/v1/stats", {**VIEWER, **GZIP})
    assert resp.status == 200 and plain_resp.status == 200
    assert resp.headers["Content-Encoding"] == "gzip"
    assert resp.headers["Vary"] == "Accept-Encoding"
    assert resp.headers["Content-Type"].startswith("application/json")
    assert int(resp.headers["Content-Length"]) == len(raw)
    assert "Content-Encoding" not in plain_resp.headers
    assert plain_resp.headers["Vary"] == "Accept-Encoding"
    assert len(raw) < len(plain_raw) / 3
    body = json.loads(gzip.decompress(raw))
    plain = json.loads(plain_raw)
    assert body["at_ms"] == plain["at_ms"]  # the same snapshot
    assert list(body)[-1] == "age_s" and 0 <= body.pop("age_s") < 3
    plain.pop("age_s")
    assert body == plain
    assert len(body["waiting_calls"]) == 5
    # and aiohttp's own client decodes it
    decoded = await client.get("/api/v1/stats", headers={**VIEWER, **GZIP})
    assert decoded.headers["Content-Encoding"] == "gzip"
    assert (await decoded.json())["at_ms"] == plain["at_ms"]


@pytest.mark.parametrize("field", ["gzip;q=0", "gzip;q=0, *;q=1", "identity", "deflate"])
async def test_gzip_refused_gets_todays_bytes(service: ServiceFactory, field: str) -> None:
    client = await service()
    resp, raw = await _raw(client, "/api/v1/stats", {**VIEWER, "Accept-Encoding": field})
    assert resp.status == 200
    assert "Content-Encoding" not in resp.headers
    assert int(resp.headers["Content-Length"]) == len(raw)
    head = sup_stats(client)._latest.peek()
    assert head is not None
    assert raw.startswith(head[0][1]["json:viewer"]) and raw.endswith(b"}")
    assert json.loads(raw)["role"] == "viewer"


async def test_no_accept_encoding_gets_todays_bytes(service: ServiceFactory) -> None:
    client = await service()
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        url = client.make_url("/api/v1/stats")
        async with session.get(url, headers=VIEWER, skip_auto_headers=["Accept-Encoding"]) as resp:
            raw = await resp.read()
            assert "Accept-Encoding" not in resp.request_info.headers
    assert "Content-Encoding" not in resp.headers
    assert json.loads(raw)["role"] == "viewer"


async def test_compressed_once_per_snapshot_for_many_requests_with_exact_ages(
    service: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await service()
    made: list[int] = []
    real = supervisor_stats.gzip_head

    def counted(data: bytes, level: int = supervisor_stats.GZIP_LEVEL) -> GzipHead:
        made.append(len(data))
        return real(data, level)

    monkeypatch.setattr(supervisor_stats, "gzip_head", counted)
    raws = await asyncio.gather(
        *(_raw(client, "/api/v1/stats", {**VIEWER, **GZIP}) for _ in range(12))
    )
    for _ in range(5):
        raws.append(await _raw(client, "/api/v1/stats", {**VIEWER, **GZIP}))
        await asyncio.sleep(0.02)
    bodies = [json.loads(gzip.decompress(raw)) for _, raw in raws]
    assert len(made) == 1  # one compression for the 17 requests of this snapshot
    assert len({b["at_ms"] for b in bodies}) == 1
    later = [b["age_s"] for b in bodies[12:]]
    assert later == sorted(later) and later[-1] > later[0]  # each request's own age
    held = sup_stats(client)._latest.peek()
    assert held is not None and set(held[0][2]) == {"json:viewer"}  # one per role held


async def test_a_refresh_gzips_in_advance_what_was_asked_gzipped(service: ServiceFactory) -> None:
    client = await service()
    source = sup_stats(client)
    assert (await client.get("/api/v1/stats", headers={**VIEWER, **GZIP})).status == 200
    _, encoded, gzipped = await source._fresh()
    assert set(encoded) == set(gzipped) == {"json:viewer"}
    head = gzipped["json:viewer"].result()
    assert gzip.decompress(head.body + gzip_tail(head, b"}")) == encoded["json:viewer"] + b"}"


async def test_viewers_get_redacted_figures_gzipped(service: ServiceFactory) -> None:
    client = await service()
    await _abandon(client)
    await sign_in(client)
    sup_resp = await client.get("/api/v1/stats", headers=GZIP)
    assert sup_resp.headers["Content-Encoding"] == "gzip"
    sup = await sup_resp.json()
    resp, raw = await _raw(client, "/api/v1/stats", {**VIEWER, **GZIP})
    assert resp.headers["Content-Encoding"] == "gzip"
    text = gzip.decompress(raw).decode()
    viewer = json.loads(text)
    assert viewer["at_ms"] == sup["at_ms"]  # the same figures, compressed per role
    assert sup["role"] == "supervisor" and viewer["role"] == "viewer"
    assert sup["abandoned_today"][0]["phone"] == "+15551234567"
    assert "phone" not in viewer["abandoned_today"][0]
    assert "5551234567" not in text


async def test_metrics_gzipped_are_the_same_text(service: ServiceFactory) -> None:
    client = await service()
    plain_resp, plain = await _raw(client, "/metrics", {**VIEWER, **IDENTITY})
    resp, raw = await _raw(client, "/metrics", {**VIEWER, **GZIP})
    assert resp.status == 200 and plain_resp.status == 200
    assert resp.headers["Content-Encoding"] == "gzip"
    assert resp.headers["Vary"] == "Accept-Encoding"
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert int(resp.headers["Content-Length"]) == len(raw)
    assert "Content-Encoding" not in plain_resp.headers
    assert gzip.decompress(raw) == plain  # the same snapshot, the same text
    assert b"hotline_queue_waiting" in plain
