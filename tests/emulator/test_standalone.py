"""The standalone pieces: agent specs, the default agent, the control API."""

from __future__ import annotations

from typing import Any

from emulator import CarrierEmulator, parse_agent

from .conftest import FakeService, eventually, twiml


def test_parse_agent() -> None:
    a = parse_agent("+15550100:2.5:120")
    assert (a.number, a.client, a.answer_after, a.handle_time) == ("+15550100", None, 2.5, 120)
    b = parse_agent("client:alice:never")
    assert (b.number, b.client, b.answer_after) == (None, "alice", None)


async def test_default_agent_answers_unknown_numbers(
    service: FakeService, emu: CarrierEmulator
) -> None:
    emu.default_agent = parse_agent("any:1:10")
    service.route("/voice", twiml('<Dial action="/done"><Client>bob</Client></Dial>'))
    service.route("/done", twiml("<Hangup/>"))
    call = await emu.place_inbound_call(voice_url=service.url("/voice"), from_="+1", to="+2")
    tr = await call.wait_finished(10)
    assert tr.outcome.answered_by == "client:bob"
    assert emu.agents_by_client["bob"].legs[0].outcome == "answered"


async def test_control_api(service: FakeService, emu: CarrierEmulator, aiohttp_client: Any) -> None:
    service.route("/voice", twiml('<Gather numDigits="1"/><Say>timeout</Say>'))
    client = await aiohttp_client(emu.rest_app())
    resp = await client.post(
        "/_emulator/calls", json={"voice_url": service.url("/voice"), "presses": [None]}
    )
    assert resp.status == 201
    sid = (await resp.json())["sid"]
    await eventually(lambda: emu.calls[sid].finished)
    body = await (await client.get(f"/_emulator/calls/{sid}")).json()
    assert body["finished"] and body["steps"][0]["input"] == ["timeout"]
    assert (await client.get("/_emulator/errors")).status == 200


async def test_serve_on_a_free_port(emu: CarrierEmulator) -> None:
    runner = await emu.serve("127.0.0.1", 0)
    try:
        assert emu.public_url is not None and not emu.public_url.endswith(":0")
        async with emu.session.get(f"{emu.public_url}/_emulator/errors") as resp:
            assert resp.status == 200
    finally:
        await runner.cleanup()
