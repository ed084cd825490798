"""Bad documents and failing webhooks: Twilio's codes, the fallback URL, the message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from emulator import CallerScript, CarrierEmulator
from emulator.errors import APPLICATION_ERROR_SPEECH

from .conftest import ACCOUNT_SID, AUTH_TOKEN, FakeService, Req, twiml


@pytest.fixture
async def quick_emu() -> AsyncIterator[CarrierEmulator]:
    emulator = CarrierEmulator(ACCOUNT_SID, AUTH_TOKEN, speedup=100, webhook_timeout=0.3)
    try:
        yield emulator
    finally:
        await emulator.close()


async def call_voice(emu: CarrierEmulator, service: FakeService, **kw: Any) -> list[str]:
    call = await emu.place_inbound_call(
        voice_url=service.url("/voice"), from_="+1", to="+2", **kw
    )
    tr = await call.wait_finished(10)
    return tr.heard_text()


@pytest.mark.parametrize(
    "body", ["<Response><Say>oops</Response>", "<Say>no root</Say>", "not xml at all"]
)
async def test_malformed_twiml_is_12100_and_an_application_error(
    service: FakeService, emu: CarrierEmulator, body: str
) -> None:
    service.route("/voice", lambda r: web.Response(text=body, content_type="text/xml"))
    heard = await call_voice(emu, service)
    assert heard == [APPLICATION_ERROR_SPEECH]
    assert [e.code for e in emu.errors] == [12100]
    assert emu.calls[next(iter(emu.calls))].transcript.outcome.hangup_reason == (
        "application-error"
    )


async def test_unknown_verb_is_a_12200_warning_and_skipped(
    service: FakeService, emu: CarrierEmulator
) -> None:
    service.route("/voice", twiml("<Speak>typo</Speak><Say>still here</Say>"))
    assert await call_voice(emu, service) == ["still here"]
    assert [(e.code, e.level.value) for e in emu.errors] == [(12200, "WARNING")]
    assert emu.errors[0].url == service.url("/voice")


async def test_http_500_is_11200_then_fallback(service: FakeService, emu: CarrierEmulator) -> None:
    service.route("/voice", lambda r: web.Response(status=500, text="boom"))
    service.route("/fallback", twiml("<Say>fallback menu</Say>"))
    heard = await call_voice(emu, service, fallback_url=service.url("/fallback"))
    assert heard == ["fallback menu"]
    params = service.at("/fallback")[0].params
    assert params["ErrorCode"] == "11200" and params["ErrorUrl"] == service.url("/voice")
    assert [e.code for e in emu.errors] == [11200]


async def test_webhook_timeout_is_11205_then_fallback(
    service: FakeService, quick_emu: CarrierEmulator
) -> None:
    async def slow(r: Req) -> str:
        await asyncio.sleep(1.0)
        return twiml("<Say>too late</Say>")

    service.route("/voice", slow)
    service.route("/fallback", twiml("<Say>sorry, we are busy</Say>"))
    heard = await call_voice(quick_emu, service, fallback_url=service.url("/fallback"))
    assert heard == ["sorry, we are busy"]
    assert service.at("/fallback")[0].params["ErrorCode"] == "11205"


async def test_fallback_failing_too_is_an_application_error(
    service: FakeService, emu: CarrierEmulator
) -> None:
    service.route("/voice", lambda r: web.Response(status=503))
    heard = await call_voice(emu, service, fallback_url=service.url("/missing"))
    assert heard == [APPLICATION_ERROR_SPEECH]
    assert [e.code for e in emu.errors] == [11200, 11200]


async def test_connection_refused_is_11205(emu: CarrierEmulator) -> None:
    call = await emu.place_inbound_call(voice_url="http://127.0.0.1:9/voice", from_="+1", to="+2")
    tr = await call.wait_finished(10)
    assert tr.heard_text() == [APPLICATION_ERROR_SPEECH]
    assert [e.code for e in emu.errors] == [11205]


async def test_unplayable_content_type_is_12300(service: FakeService, emu: CarrierEmulator) -> None:
    service.route("/voice", lambda r: web.json_response({"hello": "json"}))
    assert await call_voice(emu, service) == [APPLICATION_ERROR_SPEECH]
    assert [e.code for e in emu.errors] == [12300]


async def test_action_url_failure_also_uses_the_fallback(
    service: FakeService, emu: CarrierEmulator
) -> None:
    service.route("/voice", twiml('<Gather action="/broken" numDigits="1"><Say>go</Say></Gather>'))
    service.route("/broken", lambda r: web.Response(status=404))
    service.route("/fallback", twiml("<Say>recovered</Say>"))
    call = await emu.place_inbound_call(
        voice_url=service.url("/voice"), from_="+1", to="+2",
        fallback_url=service.url("/fallback"),
        script=CallerScript.of(["3"]),
    )
    tr = await call.wait_finished(10)
    assert tr.heard_text() == ["go", "recovered"]
    assert service.at("/fallback")[0].params["Digits"] == "3"
