from __future__ import annotations

from emulator import CallerScript, CarrierEmulator

from .conftest import FakeService, twiml


async def test_gather_flow(service: FakeService, emu: CarrierEmulator) -> None:
    service.route(
        "/voice",
        twiml('<Gather numDigits="1" action="/menu"><Say>Press 1</Say></Gather><Say>Bye</Say>'),
    )
    service.route("/menu", twiml("<Say>You pressed</Say><Hangup/>"))
    call = await emu.place_inbound_call(
        voice_url=service.url("/voice"), from_="+15550001", to="+15550002",
        script=CallerScript.of(["1"]),
    )
    tr = await call.wait_finished(10)
    print(tr.to_json())
    assert tr.heard_text() == ["Press 1", "You pressed"]
    assert service.at("/menu")[0].params["Digits"] == "1"
