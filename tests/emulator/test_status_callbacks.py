"""Status callbacks: which events, in which order, with which parameters."""

from __future__ import annotations

from emulator import AgentPhone, CallerScript, CarrierEmulator, CustomerPhone

from .conftest import FakeService, twiml


async def test_inbound_completed_callback(service: FakeService, emu: CarrierEmulator) -> None:
    service.route("/voice", twiml('<Pause length="12"/><Hangup/>'))
    call = await emu.place_inbound_call(
        voice_url=service.url("/voice"), from_="+1", to="+2",
        status_callback=service.url("/status"),
    )
    await call.wait_finished(10)
    (cb,) = service.at("/status")
    p = cb.params
    assert p["CallStatus"] == "completed" and p["CallbackSource"] == "call-progress-events"
    assert p["SequenceNumber"] == "0" and p["Direction"] == "inbound"
    assert 12 <= int(p["CallDuration"]) <= 20 and p["Timestamp"].endswith("+0000")
    assert cb.signature_ok


async def test_all_events_in_order_for_an_outbound_call(
    service: FakeService, emu: CarrierEmulator
) -> None:
    emu.register_customer(
        "+1555", CustomerPhone(answer_after=5, script=CallerScript(hangup_after=8))
    )
    service.route("/out", twiml('<Pause length="60"/>'))
    call = await emu.create_call(
        to="+1555", from_="+2", url=service.url("/out"),
        status_callback=service.url("/status"),
        status_callback_events=("initiated", "ringing", "answered", "completed"),
    )
    tr = await call.wait_finished(10)
    got = [(r.params["CallStatus"], r.params["SequenceNumber"]) for r in service.at("/status")]
    assert got == [("initiated", "0"), ("ringing", "1"), ("in-progress", "2"), ("completed", "3")]
    assert tr.outcome.hangup_reason == "caller-hangup"
    assert 7 <= int(service.at("/status")[-1].params["CallDuration"]) <= 14


async def test_only_subscribed_events(service: FakeService, emu: CarrierEmulator) -> None:
    emu.register_customer("+1555", CustomerPhone(answer="no-answer"))
    call = await emu.create_call(
        to="+1555", from_="+2", url=service.url("/out"), timeout=10,
        status_callback=service.url("/status"), status_callback_events=("ringing", "completed"),
    )
    await call.wait_finished(10)
    assert [r.params["CallStatus"] for r in service.at("/status")] == ["ringing", "no-answer"]
    assert service.at("/out") == []


async def test_dialed_leg_callbacks(service: FakeService, emu: CarrierEmulator) -> None:
    emu.register_agent(AgentPhone(number="+1999", answer_after=2, handle_time=10))
    service.route(
        "/voice",
        twiml(
            '<Dial><Number statusCallback="/leg" '
            'statusCallbackEvent="initiated ringing answered completed">+1999</Number></Dial>'
        ),
    )
    call = await emu.place_inbound_call(voice_url=service.url("/voice"), from_="+1", to="+2")
    await call.wait_finished(10)
    await emu.close()
    legs = service.at("/leg")
    assert [r.params["CallStatus"] for r in legs] == [
        "initiated", "ringing", "in-progress", "completed"
    ]
    assert {r.params["ParentCallSid"] for r in legs} == {call.sid}
    assert 10 <= int(legs[-1].params["CallDuration"]) <= 15
