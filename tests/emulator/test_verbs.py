"""Each verb, run by the emulator against a small TwiML service of our own."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from emulator import AgentPhone, CallerScript, CarrierEmulator
from emulator.audio import make_wav

from .conftest import FakeService, Req, eventually, twiml


async def run(
    emu: CarrierEmulator, service: FakeService, script: CallerScript | None = None, **kw: Any
) -> tuple[list[str], dict[str, object]]:
    call = await emu.place_inbound_call(
        voice_url=service.url("/voice"), from_="+15550001", to="+15550002", script=script, **kw
    )
    tr = await call.wait_finished(20)
    return tr.heard_text(), tr.to_json()


async def test_webhook_parameters_and_signature(service: FakeService, emu: CarrierEmulator) -> None:
    service.route("/voice", twiml("<Say>hi</Say><Pause/><Redirect>/two</Redirect>"))
    service.route("/two", twiml("<Hangup/>"))
    heard, data = await run(emu, service)
    first, second = service.requests
    assert first.params["CallStatus"] == "ringing"
    assert second.params["CallStatus"] == "in-progress"
    for key, value in {
        "AccountSid": emu.account_sid, "From": "+15550001", "To": "+15550002",
        "Direction": "inbound", "ApiVersion": "2010-04-01",
    }.items():
        assert first.params[key] == value
    assert first.params["CallSid"].startswith("CA") and len(first.params["CallSid"]) == 34
    assert data["outcome"]["hangup_reason"] == "hangup-verb"  # type: ignore[index]
    assert [s["node"] for s in data["steps"]] == [  # type: ignore[attr-defined]
        service.url("/voice"), service.url("/two")
    ]


async def test_say_records_text_and_language(service: FakeService, emu: CarrierEmulator) -> None:
    service.route("/voice", twiml('<Say language="ko-KR" loop="2">안녕하세요</Say>'))
    heard, data = await run(emu, service)
    assert heard == ["안녕하세요", "안녕하세요"]
    say = data["steps"][0]["heard"][0]  # type: ignore[index]
    assert say["language"] == "ko-KR" and say["kind"] == "say"
    assert data["outcome"]["hangup_reason"] == "end-of-twiml"  # type: ignore[index]


async def test_play_fetches_audio_and_rejects_non_audio(
    service: FakeService, emu: CarrierEmulator
) -> None:
    wav = make_wav(0.8)
    service.route("/p.wav", lambda r: web.Response(body=wav, content_type="audio/x-wav"))
    service.route("/page", lambda r: web.Response(text="<html/>", content_type="text/html"))
    service.route("/voice", twiml("<Play>/p.wav</Play><Play>/page</Play><Say>after</Say>"))
    heard, data = await run(emu, service)
    plays = [h for h in data["steps"][0]["heard"] if h["kind"] == "play"]  # type: ignore[index]
    assert plays == [
        {"kind": "play", "text": "", "language": "", "url": service.url("/p.wav"), "ms": 800}
    ]
    assert [e.code for e in emu.errors] == [13420]
    assert heard == ["after"]
    assert [r.method for r in service.at("/p.wav")] == ["GET"]


async def test_gather_sends_digits_to_action(service: FakeService, emu: CarrierEmulator) -> None:
    service.route(
        "/voice",
        twiml('<Gather numDigits="1" action="/menu"><Say>Press 1</Say></Gather><Say>no</Say>'),
    )
    service.route("/menu", twiml("<Say>got it</Say>"))
    heard, data = await run(emu, service, CallerScript.of(["12"]))
    assert heard == ["Press 1", "got it"]
    assert service.at("/menu")[0].params["Digits"] == "1"
    assert data["steps"][0]["input"] == ["dtmf:12"]  # type: ignore[index]


async def test_gather_finish_on_key(service: FakeService, emu: CarrierEmulator) -> None:
    service.route("/voice", twiml('<Gather action="/pin"><Say>PIN then hash</Say></Gather>'))
    service.route("/pin", twiml("<Hangup/>"))
    await run(emu, service, CallerScript.of(["1234#"]))
    assert service.at("/pin")[0].params["Digits"] == "1234"


async def test_gather_without_action_posts_to_the_same_document(
    service: FakeService, emu: CarrierEmulator
) -> None:
    def voice(r: Req) -> str:
        if "Digits" in r.params:
            return twiml(f"<Say>you said {r.params['Digits']}</Say>")
        return twiml('<Gather numDigits="2"><Say>two digits</Say></Gather>')

    service.route("/voice", voice)
    heard, _ = await run(emu, service, CallerScript.of(["42"]))
    assert heard == ["two digits", "you said 42"]


async def test_gather_timeout_continues_with_next_verb(
    service: FakeService, emu: CarrierEmulator
) -> None:
    service.route(
        "/voice",
        twiml('<Gather action="/menu" timeout="3"><Say>Press</Say></Gather><Say>Nothing?</Say>'),
    )
    heard, data = await run(emu, service, CallerScript.of([None]))
    assert heard == ["Press", "Nothing?"]
    assert service.at("/menu") == []
    assert data["steps"][0]["input"] == ["timeout"]  # type: ignore[index]


async def test_gather_action_on_empty_result(service: FakeService, emu: CarrierEmulator) -> None:
    service.route(
        "/voice",
        twiml('<Gather action="/menu" actionOnEmptyResult="true"><Say>Press</Say></Gather>'),
    )
    service.route("/menu", twiml("<Say>again</Say>"))
    heard, _ = await run(emu, service)
    assert heard == ["Press", "again"]
    assert service.at("/menu")[0].params["Digits"] == ""


async def test_redirect_get_signs_query_string(service: FakeService, emu: CarrierEmulator) -> None:
    service.route("/voice", twiml('<Redirect method="GET">/next?node=2</Redirect>'))
    service.route("/next", twiml("<Say>two</Say>"))
    heard, _ = await run(emu, service)
    req = service.at("/next")[0]
    assert req.method == "GET" and req.query["node"] == "2"
    assert req.query["CallSid"].startswith("CA") and req.signature_ok
    assert heard == ["two"]


async def test_pause_takes_emulated_time(service: FakeService, emu: CarrierEmulator) -> None:
    service.route("/voice", twiml('<Pause length="20"/><Hangup/>'))
    _, data = await run(emu, service)
    assert 19.5 <= data["outcome"]["duration_s"] <= 30  # type: ignore[index]


async def test_reject_never_answers(service: FakeService, emu: CarrierEmulator) -> None:
    service.route("/voice", twiml('<Reject reason="busy"/>'))
    call = await emu.place_inbound_call(
        voice_url=service.url("/voice"), from_="+1", to="+2",
        status_callback=service.url("/status"),
    )
    tr = await call.wait_finished(10)
    assert tr.outcome.final_status == "busy" and tr.outcome.duration_s == 0
    assert service.at("/status")[0].params["CallStatus"] == "busy"
    service.route("/voice", twiml("<Reject/>"))
    call = await emu.place_inbound_call(voice_url=service.url("/voice"), from_="+1", to="+2")
    assert (await call.wait_finished(10)).outcome.final_status == "no-answer"


async def test_record_serves_the_recording(
    service: FakeService, emu: CarrierEmulator, aiohttp_server: object
) -> None:
    server = await aiohttp_server(emu.rest_app())  # type: ignore[operator]
    emu.public_url = str(server.make_url("")).rstrip("/")
    service.route("/voice", twiml('<Say>Leave a message</Say><Record action="/saved"/>'))
    service.route("/saved", twiml("<Say>Thanks</Say>"))
    call = await emu.place_inbound_call(
        voice_url=service.url("/voice"), from_="+1", to="+2",
        script=CallerScript(record_seconds=4),
    )
    tr = await call.wait_finished(10)
    params = service.at("/saved")[0].params
    assert params["RecordingDuration"] == "4" and params["RecordingSid"].startswith("RE")
    async with emu.session.get(params["RecordingUrl"]) as resp:
        body = await resp.read()
        assert resp.status == 200 and resp.content_type == "audio/x-wav"
    assert body[:4] == b"RIFF"
    assert tr.heard_text() == ["Leave a message", "Thanks"]


async def test_record_with_silence_makes_no_action_request(
    service: FakeService, emu: CarrierEmulator
) -> None:
    service.route("/voice", twiml('<Record action="/saved" timeout="2"/><Say>nothing</Say>'))
    heard, _ = await run(emu, service, CallerScript(record_seconds=0))
    assert service.at("/saved") == [] and heard == ["nothing"]


async def test_dial_number_whisper_then_action(service: FakeService, emu: CarrierEmulator) -> None:
    agent = emu.register_agent(AgentPhone(number="+15550100", answer_after=3, handle_time=60))
    service.route(
        "/voice",
        twiml('<Dial action="/done" timeout="20"><Number url="/whisper">+15550100</Number></Dial>'),
    )
    service.route("/whisper", twiml("<Say>VIP caller, card lost</Say>"))
    service.route("/done", twiml("<Say>How did we do?</Say>"))
    heard, data = await run(emu, service)
    done = service.at("/done")[0].params
    assert done["DialCallStatus"] == "completed" and done["DialCallDuration"] == "60"
    assert done["DialCallSid"] == agent.legs[0].call_sid
    whisper = service.at("/whisper")[0].params
    assert whisper["Direction"] == "outbound-dial" and whisper["ParentCallSid"] == done["CallSid"]
    assert agent.legs[0].whisper == ["VIP caller, card lost"] and agent.active == 0
    assert heard == ["How did we do?"]
    assert data["outcome"]["answered_by"] == "+15550100"  # type: ignore[index]


async def test_dial_client_no_answer_and_busy(service: FakeService, emu: CarrierEmulator) -> None:
    emu.register_agent(AgentPhone(client="alice", answer_after=None))
    emu.register_agent(AgentPhone(client="bob", busy=True))
    service.route("/voice", twiml('<Dial action="/a" timeout="5"><Client>alice</Client></Dial>'))
    service.route("/a", twiml('<Dial action="/b"><Client>bob</Client></Dial>'))
    service.route("/b", twiml("<Hangup/>"))
    await run(emu, service)
    assert service.at("/a")[0].params["DialCallStatus"] == "no-answer"
    assert service.at("/b")[0].params["DialCallStatus"] == "busy"


async def test_dial_without_action_continues(service: FakeService, emu: CarrierEmulator) -> None:
    emu.register_agent(AgentPhone(number="+15550100", answer_after=1, handle_time=5))
    service.route("/voice", twiml("<Dial>+15550100</Dial><Say>after the call</Say>"))
    heard, _ = await run(emu, service)
    assert heard == ["after the call"]


async def test_caller_hangs_up_during_dial_action_still_requested(
    service: FakeService, emu: CarrierEmulator
) -> None:
    agent = emu.register_agent(AgentPhone(number="+15550100", answer_after=1, handle_time=300))
    service.route("/voice", twiml('<Dial action="/done">+15550100</Dial>'))
    service.route("/done", twiml("<Say>never heard</Say>"))
    heard, data = await run(emu, service, CallerScript(hangup_after=30))
    done = service.at("/done")[0].params
    assert done["CallStatus"] == "completed" and done["DialCallStatus"] == "completed"
    assert 27 <= int(done["DialCallDuration"]) <= 36
    assert heard == [] and agent.active == 0
    assert data["outcome"]["hangup_reason"] == "caller-hangup"  # type: ignore[index]


async def test_enqueue_wait_url_parameters_and_leave(
    service: FakeService, emu: CarrierEmulator
) -> None:
    def wait(r: Req) -> str:
        if len(service.at("/wait")) >= 3:
            return twiml("<Leave/>")
        return twiml(f'<Say>You are number {r.params["QueuePosition"]}</Say><Pause length="5"/>')

    service.route("/voice", twiml('<Enqueue waitUrl="/wait" action="/left">general</Enqueue>'))
    service.route("/wait", wait)
    service.route("/left", twiml("<Say>leaving a message</Say>"))
    heard, data = await run(emu, service)
    waits = service.at("/wait")
    assert len(waits) == 3
    for key in ("QueuePosition", "QueueSid", "QueueTime", "AvgQueueTime", "CurrentQueueSize"):
        assert key in waits[0].params
    assert waits[0].params["QueuePosition"] == "1" and waits[0].params["CurrentQueueSize"] == "1"
    assert int(waits[2].params["QueueTime"]) >= 10
    left = service.at("/left")[0].params
    assert left["QueueResult"] == "leave" and left["QueueSid"].startswith("QU")
    assert heard[-1] == "leaving a message"
    assert data["outcome"]["queued"] is True  # type: ignore[index]
    assert emu.queue("general").members == []


async def test_patience_runs_out_in_queue(service: FakeService, emu: CarrierEmulator) -> None:
    service.route("/voice", twiml('<Enqueue waitUrl="/wait" action="/left">general</Enqueue>'))
    service.route("/wait", twiml('<Play>/hold.wav</Play>'))
    service.route("/hold.wav", lambda r: web.Response(body=make_wav(10), content_type="audio/wav"))
    service.route("/left", twiml("<Hangup/>"))
    _, data = await run(emu, service, CallerScript(patience=25))
    assert data["outcome"]["abandoned"] is True  # type: ignore[index]
    assert service.at("/left")[0].params["QueueResult"] == "hangup"
    assert 24 <= data["outcome"]["duration_s"] <= 35  # type: ignore[index]


async def test_dial_queue_dequeues_the_first_caller(
    service: FakeService, emu: CarrierEmulator
) -> None:
    service.route("/voice", twiml('<Enqueue waitUrl="/wait" action="/after">sales</Enqueue>'))
    service.route("/wait", twiml('<Pause length="5"/>'))
    service.route("/announce", twiml("<Say>Connecting you now</Say>"))
    service.route("/after", twiml("<Say>Survey</Say>"))
    caller = await emu.place_inbound_call(
        voice_url=service.url("/voice"), from_="+15550001", to="+15550002"
    )
    emu.register_agent(AgentPhone(number="+15550100", answer_after=2, handle_time=40))
    service.route(
        "/agent", twiml('<Dial action="/agent-done"><Queue url="/announce">sales</Queue></Dial>')
    )
    service.route("/agent-done", twiml("<Hangup/>"))
    agent_call = await emu.create_call(to="+15550100", from_="+15550002", url=service.url("/agent"))
    tr = await caller.wait_finished(20)
    await agent_call.wait_finished(20)
    after = service.at("/after")[0].params
    assert after["QueueResult"] == "bridged"
    assert int(after["QueueTime"]) < 10  # waiting time only, not the 40 s of talk
    assert tr.heard_text() == ["Connecting you now", "Survey"]
    assert tr.outcome.answered_by == "+15550100"
    done = service.at("/agent-done")[0].params
    assert done["DialCallStatus"] == "completed" and done["DialCallSid"] == caller.sid
    assert 38 <= int(done["DialCallDuration"]) <= 48


async def test_hanging_up_while_queued_is_an_abandon(
    service: FakeService, emu: CarrierEmulator
) -> None:
    service.route("/voice", twiml('<Enqueue waitUrl="/wait" action="/q">general</Enqueue>'))
    service.route("/wait", twiml('<Pause length="10"/>'))
    service.route("/q", twiml("<Hangup/>"))
    _, data = await run(emu, service, CallerScript(hangup_after=15))
    assert data["outcome"]["abandoned"] is True  # type: ignore[index]
    assert data["outcome"]["queued"] is True  # type: ignore[index]
    assert service.at("/q")[0].params["QueueResult"] == "hangup"
    assert service.at("/q")[0].params["CallStatus"] == "completed"


async def test_dial_queue_waits_for_a_caller_to_join(
    service: FakeService, emu: CarrierEmulator
) -> None:
    service.route(
        "/agent", twiml('<Dial action="/agent-done" timeout="60"><Queue>q</Queue></Dial>')
    )
    service.route("/agent-done", twiml("<Hangup/>"))
    service.route("/voice", twiml("<Enqueue>q</Enqueue><Say>after the agent</Say>"))
    emu.register_agent(AgentPhone(number="+15550100", answer_after=0, handle_time=10))
    agent_call = await emu.create_call(to="+15550100", from_="+2", url=service.url("/agent"))
    await eventually(lambda: emu.queue("q").waiting_dequeuers)
    heard, data = await run(emu, service)
    await agent_call.wait_finished(10)
    assert heard == ["after the agent"]
    assert service.at("/agent-done")[0].params["DialCallStatus"] == "completed"
    assert data["outcome"]["answered_by"] == "+15550100"  # type: ignore[index]


async def test_screened_whisper_accept_and_decline(
    service: FakeService, emu: CarrierEmulator
) -> None:
    emu.register_agent(AgentPhone(number="+1001", answer_after=1, handle_time=5, whisper_keys="1"))
    emu.register_agent(AgentPhone(number="+1002", answer_after=1, handle_time=5))
    screen = twiml('<Gather numDigits="1" action="/screened"><Say>Press 1 to take it</Say></Gather>'
                   "<Hangup/>")
    service.route("/screen", screen)
    service.route("/screened", twiml("<Say>Connecting</Say>"))
    service.route("/voice", twiml('<Dial action="/a"><Number url="/screen">+1002</Number></Dial>'))
    service.route("/a", twiml('<Dial action="/b"><Number url="/screen">+1001</Number></Dial>'))
    service.route("/b", twiml("<Hangup/>"))
    await run(emu, service)
    assert service.at("/a")[0].params["DialCallStatus"] == "no-answer"
    assert service.at("/b")[0].params["DialCallStatus"] == "completed"
    assert service.at("/screened")[0].params["Digits"] == "1"
    assert emu.agents_by_number["+1001"].legs[0].whisper == ["Press 1 to take it", "Connecting"]


async def test_gather_speech_entry(service: FakeService, emu: CarrierEmulator) -> None:
    service.route(
        "/voice", twiml('<Gather input="speech dtmf" action="/heard"><Say>Say it</Say></Gather>')
    )
    service.route("/heard", twiml("<Hangup/>"))
    await run(emu, service, CallerScript.of(["speech:lost card"]))
    params = service.at("/heard")[0].params
    assert params["SpeechResult"] == "lost card" and "Digits" not in params
