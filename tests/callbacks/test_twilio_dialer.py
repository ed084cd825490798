"""TwilioDialer against a local stand-in of Twilio's REST paths (the emulator's job later):
the base URL override, the parameters of the call, errors mapped to DialError."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from callbacks.jobs import Job, JobKind, JobState
from callbacks.scheduler import DialError
from callbacks.twilio_dialer import TwilioDialer

ACCOUNT = "AC" + "1" * 32


def job(phone: str = "+8613812345678") -> Job:
    return Job(
        id="job1",
        kind=JobKind.SURVEY,
        state=JobState.DIALLING,
        phone=phone,
        due_ms=0,
        created_ms=0,
        updated_ms=1_790_000_000_000,
        attempt=1,
    )


@pytest.fixture
async def carrier() -> Any:
    calls: list[dict[str, Any]] = []

    async def create(request: web.Request) -> web.Response:
        form = await request.post()
        to = str(form["To"])
        if to == "+15005550001":
            return web.json_response(
                {"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400}, status=400
            )
        if to == "+15005550009":
            return web.json_response({"code": 20500, "message": "oops", "status": 503}, status=503)
        sid = "CA" + uuid.uuid4().hex
        peer = request.transport.get_extra_info("peername") if request.transport else None
        calls.append({"sid": sid, "peer": peer, **{k: form.getall(k) for k in form}})
        return web.json_response({"sid": sid, "status": "queued", "to": to}, status=201)

    async def listing(request: web.Request) -> web.Response:
        to = request.query.get("To")
        found = [
            {"sid": c["sid"], "to": c["To"][0], "date_created": None}
            for c in calls
            if c["To"][0] == to
        ]
        return web.json_response({"calls": found, "next_page_uri": None, "uri": request.path})

    app = web.Application()
    app.router.add_post(f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json", create)
    app.router.add_get(f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json", listing)
    server = TestServer(app)
    await server.start_server()
    try:
        yield server, calls
    finally:
        await server.close()


async def test_dial_posts_the_call_with_callbacks_and_amd(carrier: Any) -> None:
    server, calls = carrier
    dialer = TwilioDialer(
        account_sid=ACCOUNT,
        auth_token="secret",
        caller_id="+861095500000",
        public_url="https://hotline.example/",
        api_base=str(server.make_url("")),
    )
    try:
        sid = await dialer.dial(job())
        assert sid.startswith("CA")
        sent = calls[0]
        assert sent["To"] == ["+8613812345678"] and sent["From"] == ["+861095500000"]
        assert sent["MachineDetection"] == ["Enable"]
        assert sent["StatusCallback"] == ["https://hotline.example/voice/outbound/status?job=job1"]
        assert sorted(sent["StatusCallbackEvent"]) == [
            "answered",
            "completed",
            "initiated",
            "ringing",
        ]
        assert sent["Url"][0].startswith("https://hotline.example/voice/outbound?job=job1")
        assert await dialer.find_call(job()) == sid
        assert await dialer.find_call(job("+442071234567")) is None
    finally:
        await dialer.aclose()


@pytest.mark.parametrize(("phone", "retryable"), [("+15005550001", False), ("+15005550009", True)])
async def test_errors_become_dial_errors(carrier: Any, phone: str, retryable: bool) -> None:
    server, _ = carrier
    dialer = TwilioDialer(
        account_sid=ACCOUNT,
        auth_token="secret",
        caller_id="+861095500000",
        public_url="https://hotline.example",
        api_base=str(server.make_url("")),
    )
    try:
        with pytest.raises(DialError) as caught:
            await dialer.dial(job(phone))
        assert caught.value.retryable is retryable
    finally:
        await dialer.aclose()


async def test_dials_reuse_one_kept_alive_connection(carrier: Any) -> None:
    server, calls = carrier
    dialer = TwilioDialer(
        account_sid=ACCOUNT,
        auth_token="secret",
        caller_id="+861095500000",
        public_url="https://hotline.example",
        api_base=str(server.make_url("")),
    )
    try:
        sids = [await dialer.dial(job(f"+86138123456{i:02d}")) for i in range(20)]
    finally:
        await dialer.aclose()
    assert len(set(sids)) == 20
    assert len({c["peer"] for c in calls}) == 1
    assert [c["To"] for c in calls] == [[f"+86138123456{i:02d}"] for i in range(20)]
