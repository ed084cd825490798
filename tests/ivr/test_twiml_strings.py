"""The string-built TwiML of `Renderer.render` against twilio's VoiceResponse.

`reference_render` is the renderer as it was before it built strings (VoiceResponse and
ElementTree). Every node of the demo flow, in every language, after every kind of input,
with speech off and on (voice menus streamed, some prompts pre-rendered), renders to the
same bytes and the same XML tree both ways.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from twilio.twiml.voice_response import Gather as TwimlGather
from twilio.twiml.voice_response import VoiceResponse

from config.loader import load_config
from config.menus import Flow, NodeKind
from ivr import engine
from ivr.engine import (
    ActionDone,
    AuthChecked,
    Digits,
    Enter,
    Gather,
    Hangup,
    Keypad,
    LookedUp,
    NoInput,
    Recorded,
    RecordMessage,
    Say,
    Session,
    Step,
    Transfer,
    node_prompts,
)
from ivr.twiml import KEYPAD_SUFFIX, MEDIA_PATH, Renderer, hold_in_queue, websocket_url

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config")
FLOW: Flow = CONFIG.flow
SID = "CA" + "7" * 32


# --- the reference: the library-built renderer, as it was -----------------------------------
def _speak(r: Renderer, target: VoiceResponse | TwimlGather, say: Say) -> None:
    r.speak(target, say)


def reference_render(r: Renderer, step: Step) -> str:
    response = VoiceResponse()
    seq = step.session.seq
    for verb in step.verbs:
        if isinstance(verb, Say):
            _speak(r, response, verb)
        elif isinstance(verb, Gather) and verb.voice and r.voice_ok(verb, step.session):
            node = r.flow.nodes.get(verb.node)
            own = node_prompts(r.flow, node, step.session.lang) if node is not None else ()
            before = verb.prompts[: len(verb.prompts) - len(own)] if own else verb.prompts
            for say in before:
                _speak(r, response, say)
            connect = response.connect(
                action=r.node_url(verb.node, seq, KEYPAD_SUFFIX), method="POST"
            )
            stream = connect.stream(url=websocket_url(r.base_url, MEDIA_PATH))
            for name, value in (
                ("call", step.session.call_sid),
                ("node", verb.node),
                ("s", str(seq)),
                ("lang", step.session.lang),
            ):
                stream.parameter(name=name, value=value)
        elif isinstance(verb, Gather):
            gather = response.gather(
                input="dtmf",
                action=r.node_url(verb.node, seq),
                method="POST",
                timeout=verb.timeout_s,
                action_on_empty_result=True,
                **({"num_digits": verb.num_digits} if verb.num_digits else {}),
                **({"finish_on_key": verb.finish_on_key} if verb.finish_on_key else {}),
            )
            for prompt in verb.prompts:
                _speak(r, gather, prompt)
        elif isinstance(verb, Transfer):
            hold_in_queue(response, r, verb.queue, step.session.lang)
        elif isinstance(verb, RecordMessage):
            response.record(
                action=r.node_url(verb.node, seq),
                method="POST",
                max_length=verb.max_length_s,
                finish_on_key="#",
                play_beep=True,
                timeout=5,
            )
        elif isinstance(verb, Hangup):
            response.hangup()
    return str(response)


# --- the steps of the demo flow -------------------------------------------------------------
def _events(kind: NodeKind) -> list[engine.Event]:
    events: list[engine.Event] = [Enter(), NoInput(), Digits("1"), Digits("9"), Keypad()]
    events += [Keypad("no_input"), Digits("12345678"), Digits("4321"), LookedUp("ref-1")]
    events += [LookedUp(None), AuthChecked(ok=True, customer_id="c1", vip=True)]
    events += [AuthChecked(ok=False), ActionDone(ok=False)]
    values = {"amount": "12,850.40", "currency": "CNY"}
    values.update({f"currency_{lg}": "元 & <yuan>" for lg in ("zh", "en", "ko")})
    events.append(ActionDone(ok=True, values=values))
    if kind is NodeKind.RECORD:
        events += [Recorded("https://api.twilio.test/rec/RE1?a=1&b=2", 12), Recorded("", 0)]
    return events


def demo_steps() -> Iterator[Step]:
    keys = {o.key for node in FLOW.nodes.values() for o in node.options}
    for node in FLOW.nodes.values():
        for lang in FLOW.languages:
            for attempts in (0, 9):
                session = Session(call_sid=SID, node=node.id, lang=lang, attempts=attempts, seq=3)
                events = _events(node.kind) + [Digits(k) for k in sorted(keys)]
                for event in events:
                    try:
                        step = engine.step(FLOW, session, event)
                    except engine.FlowError:
                        continue
                    yield replace(step, session=replace(step.session, seq=4))


def _prompt_url(text: str, lang: str) -> str | None:
    # some prompts and number fragments "rendered", others not
    if len(text) % 2 == 0 or text.strip().isdigit():
        return f"https://h.test/prompts/{lang}/{len(text)}.wav?v=1&x=<2>"
    return None


RENDERERS = {
    "speech off": Renderer(FLOW, "https://hotline.bank.test"),
    "speech on": Renderer(
        FLOW, "http://127.0.0.1:8080/", prompt_url=_prompt_url, voice_ok=lambda _g, _s: True
    ),
}


def _tree(element: ET.Element) -> tuple[object, ...]:
    return (
        element.tag,
        sorted(element.attrib.items()),
        (element.text or "").strip(),
        [_tree(child) for child in element],
    )


@pytest.mark.parametrize("mode", sorted(RENDERERS))
def test_every_demo_step_renders_the_same_twiml_both_ways(mode: str) -> None:
    renderer = RENDERERS[mode]
    steps = list(demo_steps())
    assert len(steps) > 300
    verbs = {type(v).__name__ for step in steps for v in step.verbs}
    assert verbs >= {"Say", "Gather", "Transfer", "RecordMessage", "Hangup"}
    for step in steps:
        ours = renderer.render(step)
        theirs = reference_render(renderer, step)
        assert _tree(ET.fromstring(ours)) == _tree(ET.fromstring(theirs)), step
        assert ours == theirs, step


def test_text_and_attributes_are_escaped_like_elementtree() -> None:
    nasty = "a & b < c > d \"e\" 'f'\n\tg\r h 元"
    flow = replace(FLOW, say_voice={**FLOW.say_voice, "en": nasty})
    renderer = Renderer(flow, "https://h.test/base?x=1&y=2")
    session = Session(call_sid=SID, node="main", lang="en", seq=2)
    step = Step(
        session,
        (
            Say(nasty, "en"),
            Gather(f"n{nasty}", (Say(nasty, "en"),), 5, finish_on_key="#"),
            Transfer("t", f"q{nasty}", 1, None, frozenset()),
            RecordMessage(nasty, 60),
            Hangup(),
        ),
    )
    ours = renderer.render(step)
    assert ours == reference_render(renderer, step)
    said = ET.fromstring(ours).find("Say")
    assert said is not None and said.text == nasty.replace("\r", "\n")
    assert said.get("voice") == nasty


def test_an_empty_step_is_an_empty_response() -> None:
    renderer = RENDERERS["speech off"]
    step = Step(Session(call_sid=SID, node="main", lang="en"))
    assert renderer.render(step) == reference_render(renderer, step)


def test_a_pluggable_transfer_renderer_is_spliced_in() -> None:
    def dial(response: VoiceResponse, verb: Transfer, session: Session, r: Renderer) -> None:
        response.dial(f"+86{verb.priority}", timeout=30)

    renderer = replace(RENDERERS["speech off"], transfer=dial)
    session = Session(call_sid=SID, node="main", lang="en", seq=1)
    step = Step(session, (Say("x", "en"), Transfer("t", "general", 5, None, frozenset())))
    expected = VoiceResponse()
    renderer.speak(expected, Say("x", "en"))
    dial(expected, Transfer("t", "general", 5, None, frozenset()), session, renderer)
    assert renderer.render(step) == str(expected)
