"""The TwiML parser: typed verbs, and the codes Twilio logs for bad documents."""

from __future__ import annotations

import pytest

from emulator import twiml as t
from emulator.errors import Level, TwimlError


def codes(doc: t.Document) -> list[int]:
    return [w.code for w in doc.warnings]


def test_parses_the_verbs_the_service_uses() -> None:
    doc = t.parse_twiml(
        """<?xml version="1.0" encoding="UTF-8"?>
        <Response>
          <Gather input="dtmf" numDigits="1" timeout="7" action="/n" actionOnEmptyResult="true">
            <Play>/p.wav</Play><Say language="ko-KR">안녕하세요</Say><Pause length="2"/>
          </Gather>
          <Enqueue waitUrl="/wait" action="/after">general</Enqueue>
          <Dial action="/dialed" timeout="20">
            <Number url="/whisper">+15550100</Number><Client>alice</Client>
          </Dial>
          <Dial><Queue url="/announce">general</Queue></Dial>
          <Record maxLength="30" playBeep="false" action="/rec"/>
          <Connect action="/after-stream">
            <Stream url="wss://x/media"><Parameter name="node" value="main"/></Stream>
          </Connect>
          <Start><Stream url="wss://x/fork" track="both_tracks" name="f"/></Start>
          <Stop><Stream name="f"/></Stop>
          <Redirect method="GET">/again</Redirect>
          <Leave/><Hangup/><Reject reason="busy"/>
        </Response>"""
    )
    assert doc.warnings == ()
    g = doc.verbs[0]
    assert isinstance(g, t.Gather)
    assert (g.num_digits, g.timeout, g.action, g.action_on_empty_result) == (1, 7, "/n", True)
    assert [type(p) for p in g.prompts] == [t.Play, t.Say, t.Pause]
    assert doc.verbs[1] == t.Enqueue(name="general", action="/after", wait_url="/wait")
    dial = doc.verbs[2]
    assert isinstance(dial, t.Dial)
    assert dial.targets == (t.DialNumber("+15550100", url="/whisper"), t.DialClient("alice"))
    assert dial.timeout == 20
    assert doc.verbs[3] == t.Dial(targets=(t.DialQueue("general", url="/announce"),))
    rec = doc.verbs[4]
    assert isinstance(rec, t.Record) and rec.max_length == 30 and not rec.play_beep
    conn = doc.verbs[5]
    assert isinstance(conn, t.Connect) and conn.stream is not None
    assert conn.stream.parameters == (("node", "main"),)
    assert [t.verb_name(v) for v in doc.verbs[6:]] == [
        "Start", "Stop", "Redirect", "Leave", "Hangup", "Reject"
    ]


@pytest.mark.parametrize(
    "text",
    [
        "<Response><Say>unclosed</Response>",
        "",
        "  <Response/> trailing <junk",
        "<response><Say>hi</Say></response>",
        "<Foo/>",
    ],
)
def test_malformed_documents_are_12100(text: str) -> None:
    with pytest.raises(TwimlError) as err:
        t.parse_twiml(text)
    assert err.value.code == 12100


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("<Sya>typo</Sya>", 12200),
        ('<Say colour="red">hi</Say>', 12200),
        ('<Gather timeout="soon"/>', 13313),
        ('<Gather numDigits="0"/>', 13314),
        ('<Gather finishOnKey="ab"/>', 13310),
        ("<Gather><Dial>+1</Dial></Gather>", 13320),
        ('<Pause length="x"/>', 13910),
        ('<Dial timeout="-1">+1</Dial>', 13212),
        ('<Play loop="many">/a.wav</Play>', 13410),
        ('<Enqueue waitUrlMethod="PUT">q</Enqueue>', 14206),
    ],
)
def test_schema_problems_are_logged_not_fatal(body: str, code: int) -> None:
    doc = t.parse_twiml(f"<Response>{body}<Say>after</Say></Response>")
    assert code in codes(doc)
    assert isinstance(doc.verbs[-1], t.Say)


def test_12200_is_a_warning_level() -> None:
    doc = t.parse_twiml("<Response><Sya/></Response>")
    assert doc.warnings[0].level == Level.WARNING and doc.verbs == ()


def test_invalid_values_fall_back_to_defaults() -> None:
    doc = t.parse_twiml('<Response><Gather timeout="x" numDigits="-2"/></Response>')
    g = doc.verbs[0]
    assert isinstance(g, t.Gather) and g.timeout == 5 and g.num_digits is None


def test_twilio_voice_response_output_parses_cleanly() -> None:
    """What the service builds with twilio's VoiceResponse is accepted without warnings."""
    from twilio.twiml.voice_response import Connect, Dial, Gather, Start, VoiceResponse

    r = VoiceResponse()
    g = Gather(
        input="dtmf", action="/n", method="POST", timeout=5, num_digits=1,
        finish_on_key="#", action_on_empty_result=True, language="ko-KR",
    )
    g.say("안녕하세요", language="ko-KR", voice="Polly.Seoyeon")
    g.play("/p.wav", loop=1)
    g.pause(length=1)
    r.append(g)
    r.enqueue("general", action="/q", method="POST", wait_url="/w", wait_url_method="POST")
    d = Dial(action="/d", method="POST", timeout=20, caller_id="+15550000", time_limit=600)
    d.number("+15550100", url="/whisper", method="POST", status_callback="/leg",
             status_callback_event="initiated ringing answered completed")
    d.client("alice", url="/whisper")
    r.append(d)
    dq = Dial()
    dq.queue("general", url="/announce")
    r.append(dq)
    r.record(action="/r", method="POST", max_length=60, finish_on_key="#", play_beep=True,
             timeout=5)
    c = Connect(action="/after")
    s = c.stream(url="wss://x/m", status_callback="/ss")
    s.parameter(name="node", value="main")
    r.append(c)
    st = Start()
    st.stream(url="wss://x/f", name="fork", track="both_tracks")
    r.append(st)
    r.redirect("/again", method="GET")
    r.leave()
    r.hangup()
    r.reject(reason="busy")
    doc = t.parse_twiml(str(r))
    assert doc.warnings == ()
    assert [t.verb_name(v) for v in doc.verbs] == [
        "Gather", "Enqueue", "Dial", "Dial", "Record", "Connect", "Start", "Redirect",
        "Leave", "Hangup", "Reject",
    ]
    dial = doc.verbs[2]
    assert isinstance(dial, t.Dial) and dial.time_limit == 600
    assert dial.targets[0] == t.DialNumber(
        "+15550100", url="/whisper", status_callback="/leg",
        status_callback_event=("initiated", "ringing", "answered", "completed"),
    )
