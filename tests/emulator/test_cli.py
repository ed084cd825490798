"""`hotline call`'s pieces: the arguments and the runner, against our test service."""

from __future__ import annotations

import argparse
import io
import json

from emulator import AgentPhone, CarrierEmulator
from emulator.cli import add_call_arguments, run_call

from .conftest import FakeService, twiml


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hotline call")
    add_call_arguments(parser)
    return parser.parse_args(list(argv))


def test_arguments() -> None:
    args = parse("--press", "1", "--press", "1234#", "--say", "a.wav", "--hangup-after", "30",
                 "--json", "--url", "http://h/voice", "--from", "+1", "--to", "+2",
                 "--speedup", "20")
    assert args.press == ["1", "1234#"] and args.say == ["a.wav"]
    assert (args.hangup_after, args.json, args.url, args.from_, args.to, args.speedup) == (
        30.0, True, "http://h/voice", "+1", "+2", 20.0
    )


def menu(service: FakeService) -> None:
    service.route(
        "/voice",
        twiml('<Gather numDigits="1" action="/menu"><Say>For a person press 0</Say></Gather>'),
    )
    service.route(
        "/menu",
        twiml('<Say>Connecting</Say><Dial action="/bye"><Number>+15550100</Number></Dial>'),
    )
    service.route("/bye", twiml("<Say>Goodbye</Say><Hangup/>"))


async def test_json_scenario(service: FakeService, emu: CarrierEmulator) -> None:
    menu(service)
    emu.register_agent(AgentPhone(number="+15550100", answer_after=2, handle_time=30))
    out = io.StringIO()
    code = await run_call(
        parse("--url", service.url("/voice"), "--press", "0", "--json"), emulator=emu, out=out
    )
    assert code == 0
    data = json.loads(out.getvalue())
    assert [s["verbs"] for s in data["steps"]] == [
        ["Gather"], ["Say", "Dial"], [], ["Say", "Hangup"]
    ]
    assert data["steps"][0]["input"] == ["dtmf:0"]
    assert data["steps"][0]["heard"][0]["text"] == "For a person press 0"
    assert set(data["steps"][0]) == {"node", "verbs", "heard", "input"}
    assert data["outcome"]["answered_by"] == "+15550100"
    assert data["outcome"]["hangup_reason"] == "hangup-verb"
    assert data["outcome"]["queued"] is False and data["outcome"]["abandoned"] is False
    assert data["outcome"]["duration_s"] >= 30


async def test_text_output_with_its_own_emulator(service: FakeService) -> None:
    service.route("/voice", twiml('<Say>Welcome</Say><Gather timeout="2"/><Say>Bye</Say>'))
    out = io.StringIO()
    code = await run_call(
        parse("--url", service.url("/voice"), "--speedup", "100", "--emulator-port", "0",
              "--auth-token", "test-auth-token-123", "--account-sid", "AC" + "1" * 32),
        out=out,
    )
    text = out.getvalue()
    assert code == 0, text
    assert "hears (en-US): Welcome" in text and "does: timeout" in text
    assert "hangup_reason=end-of-twiml" in text
