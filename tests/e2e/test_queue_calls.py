"""Callers reach people: the Redis router pairs, Twilio (the emulator) rings the agent."""

from __future__ import annotations

import asyncio

from emulator import AgentPhone, CallerScript, CustomerPhone
from tests.e2e.conftest import Line

CALLER = "+8613812345678"
HOTLINE = "+8640012345"


async def test_a_ready_agent_answers_and_hears_the_whisper(line: Line) -> None:
    agent = AgentPhone(number="+15550100002", answer_after=2, handle_time=20)
    line.emu.register_agent(agent)
    await line.router.login("a02", ready=True)
    call = await line.emu.place_inbound_call(
        voice_url=line.voice_url, from_=CALLER, to=HOTLINE, script=CallerScript.of(["2", "0"])
    )
    transcript = await call.wait_finished(30)
    assert transcript.outcome.answered_by == "+15550100002"
    assert transcript.heard_text()[-1] == "Thank you for calling. Goodbye."
    assert line.emu.errors == []
    whisper = [text for leg in agent.legs for text in leg.whisper]
    assert any(text.startswith("Queue general.") for text in whisper), whisper
    snapshot = await line.router.stats.snapshot()
    today = snapshot["queues"]["general"]["today"]
    assert (today["offered"], today["answered"], today["abandoned"]) == (1, 1, 0)
    status = await line.router.store.agent("a02")
    assert status.state.value in {"wrap_up", "ready"}


async def test_with_nobody_free_the_caller_hears_the_position_then_gives_up(line: Line) -> None:
    call = await line.emu.place_inbound_call(
        voice_url=line.voice_url,
        from_=CALLER,
        to=HOTLINE,
        script=CallerScript(presses=("2", "0"), patience=45),
    )
    transcript = await call.wait_finished(30)
    assert transcript.outcome.queued and transcript.outcome.abandoned
    assert "You are number 1 in the queue." in transcript.heard_text()
    for _ in range(50):  # the status callback lands just after the call ends
        snapshot = await line.router.stats.snapshot()
        if snapshot["queues"]["general"]["today"]["abandoned"] == 1:
            break
        await asyncio.sleep(0.05)
    assert snapshot["queues"]["general"]["today"]["abandoned"] == 1
    abandoned = await line.router.store.abandoned()
    assert [a["call_sid"] for a in abandoned] == [call.sid]
    assert line.emu.errors == []


async def test_an_agent_who_does_not_answer_passes_the_call_to_the_next(line: Line) -> None:
    silent = AgentPhone(number="+15550100002", answer_after=None)
    helpful = AgentPhone(number="+15550100008", answer_after=1, handle_time=10)
    line.emu.register_agent(silent)
    line.emu.register_agent(helpful)
    await line.router.login("a02", ready=True)
    call = await line.emu.place_inbound_call(
        voice_url=line.voice_url, from_=CALLER, to=HOTLINE, script=CallerScript.of(["2", "0"])
    )
    await asyncio.sleep(0.3)
    await line.router.login("a08", ready=True)
    transcript = await call.wait_finished(60)
    assert transcript.outcome.answered_by == "+15550100008"
    assert len(silent.legs) >= 1
    assert (await line.router.store.agent("a02")).state.value == "not_ready"
    assert line.emu.errors == []


async def test_a_callback_keeps_the_place_and_reaches_the_customer(line: Line) -> None:
    # Two general agents busy on long calls make the estimate pass the callback threshold.
    for agent_id, number in (("a02", "+15550100002"), ("a08", "+15550100008")):
        line.emu.register_agent(AgentPhone(number=number, answer_after=1, handle_time=240))
        await line.router.login(agent_id, ready=True)
    busy = [
        await line.emu.place_inbound_call(
            voice_url=line.voice_url,
            from_=f"+861390000000{i}",
            to=HOTLINE,
            script=CallerScript.of(["2", "0"]),
        )
        for i in range(2)
    ]
    await asyncio.sleep(0.5)
    customer = CustomerPhone(answer="human", answer_after=2)
    line.emu.register_customer(CALLER, customer)
    call = await line.emu.place_inbound_call(
        voice_url=line.voice_url,
        from_=CALLER,
        to=HOTLINE,
        script=CallerScript.of(["2", "0", "1"]),
    )
    transcript = await call.wait_finished(30)
    heard = transcript.heard_text()
    assert "To be called back without losing your place in the queue, press 1." in heard
    assert heard[-1].startswith("Thank you. We will call you back")
    status = await line.router.store.call_status(call.sid)
    assert status is not None and status.callback
    for first in busy:
        await first.wait_finished(60)
    for _ in range(200):
        outbound = [c for c in line.emu.calls.values() if c.direction == "outbound-api"]
        if outbound and outbound[0].finished:
            break
        await asyncio.sleep(0.1)
    assert outbound, "the service never called the customer back"
    back = await outbound[0].wait_finished(30)
    assert "Hello, this is the bank returning your call." in back.heard_text()[0]
    assert back.outcome.answered_by in {"+15550100002", "+15550100008"}
    assert line.emu.errors == []
