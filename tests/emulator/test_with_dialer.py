"""The callbacks package's TwilioDialer (async twilio client) against the emulator."""

from __future__ import annotations

from typing import Any

from callbacks.jobs import Job, JobKind, JobState
from callbacks.twilio_dialer import TwilioDialer
from emulator import CallerScript, CarrierEmulator, CustomerPhone

from .conftest import ACCOUNT_SID, AUTH_TOKEN, FakeService, twiml


async def test_survey_call_placed_and_found(
    service: FakeService, emu: CarrierEmulator, aiohttp_server: Any
) -> None:
    rest = await aiohttp_server(emu.rest_app())
    emu.register_customer(
        "+8613812345678", CustomerPhone(answer_after=3, script=CallerScript(presses=("5",)))
    )
    service.route(
        "/voice/outbound",
        twiml('<Gather numDigits="1" action="/score"><Say>Rate us 1 to 5</Say></Gather>'),
    )
    service.route("/score", twiml("<Say>Thank you</Say><Hangup/>"))
    dialer = TwilioDialer(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        caller_id="+8640012345",
        public_url=service.base,
        api_base=str(rest.make_url("")),
    )
    job = Job(
        id="job1", kind=JobKind.SURVEY, state=JobState.DIALLING, phone="+8613812345678",
        due_ms=0, created_ms=0, updated_ms=0, attempt=1,
    )
    try:
        sid = await dialer.dial(job)
        tr = await emu.calls[sid].wait_finished(10)
        assert await dialer.find_call(job) == sid
    finally:
        await dialer.aclose()
    assert tr.heard_text() == ["Rate us 1 to 5", "Thank you"]
    assert service.at("/score")[0].params["Digits"] == "5"
    first = service.at("/voice/outbound")[0]
    assert first.query["job"] == "job1" and first.params["AnsweredBy"] == "human"
    statuses = [r.params["CallStatus"] for r in service.at("/voice/outbound/status")]
    assert statuses == ["initiated", "ringing", "in-progress", "completed"]
