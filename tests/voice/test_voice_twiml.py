"""TwiML of voice menus and pre-rendered prompts, the Keypad event, and the speech hooks:
pure, no Redis, no HTTP."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from config.loader import load_config
from config.menus import Flow
from ivr import engine
from ivr.engine import Digits, Enter, Gather, Keypad, NoInput, Say, Session, Transfer
from ivr.prompt_catalog import prompt_items
from ivr.speech_hooks import SpeechHooks
from ivr.twiml import Renderer, websocket_url
from ivr.voice import parse_stream_params
from speech.media_stream import MediaFormat, Start
from speech.prompts import PromptCache
from speech.recognizer import ModelRegistry, SpeechRecognizer

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config")
FLOW: Flow = CONFIG.flow
SID = "CA" + "4" * 32


def at(node: str, lang: str = "ko", **kw: object) -> Session:
    return Session(call_sid=SID, node=node, lang=lang, **kw)  # type: ignore[arg-type]


def xml(body: str) -> ET.Element:
    return ET.fromstring(body)


ENTER = Enter()


def render(renderer: Renderer, session: Session, event: engine.Event = ENTER) -> ET.Element:
    step = engine.step(FLOW, session, event)
    return xml(renderer.render(replace(step, session=replace(step.session, seq=7))))


# --- engine: the Keypad event -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "said", "voice"),
    [
        (Enter(), [], True),  # a voice menu's Gather carries the voice flag
        (Keypad(), [], False),  # the same menu by keypad, nothing said first
        (Keypad("no_input"), ["no_input"], False),
        (Keypad("invalid"), ["invalid"], False),
    ],
)
def test_keypad_event_asks_the_same_menu_by_keypad(
    event: engine.Event, said: list[str], voice: bool
) -> None:
    session = at("main", attempts=1)
    step = engine.step(FLOW, session, event)
    (gather,) = step.verbs
    assert isinstance(gather, Gather) and gather.node == "main" and gather.voice is voice
    texts = [p.text for p in gather.prompts]
    assert texts == [FLOW.message(m, "ko") for m in said] + [FLOW.nodes["main"].prompt["ko"]]
    assert step.session.attempts == 1  # untouched: the keypad menu has its own retries


@pytest.mark.parametrize("event", [NoInput(), Digits("7"), Enter()])
def test_after_the_keypad_fallback_the_menu_stays_keypad(event: engine.Event) -> None:
    keyed = engine.step(FLOW, at("main"), Keypad("no_input")).session
    step = engine.step(FLOW, keyed, event)
    gather = step.verbs[-1]
    assert isinstance(gather, Gather) and gather.node == "main" and not gather.voice
    other = engine.step(FLOW, at("anything_else", vars={"keypad_menu": "language"}), Digits("1"))
    assert isinstance(other.verbs[-1], Gather) and other.verbs[-1].voice  # only that menu


@pytest.mark.parametrize(
    ("node", "event", "next_node"),
    [
        ("main", Digits("2"), "lost_card"),  # what a match becomes
        ("main", Digits("7"), "main"),  # an unknown key: the engine's own retry
        ("main", NoInput(), "main"),
        ("account", Keypad(), "account"),  # not a menu: re-entered, nothing changes
        ("lost_card", Keypad(), "lost_card"),
    ],
)
def test_events_at_voice_menus(node: str, event: engine.Event, next_node: str) -> None:
    step = engine.step(FLOW, at(node), event)
    assert step.session.node == next_node
    if next_node == "lost_card":
        assert isinstance(step.verbs[-1], Transfer)


# --- TwiML ---------------------------------------------------------------------------------


def test_voice_menu_connects_a_stream_with_its_parameters() -> None:
    r = Renderer(FLOW, "https://hotline.bank.test", voice_ok=lambda _g, _s: True)
    doc = render(r, at("main"))
    connect = doc.find("Connect")
    assert connect is not None and doc.find("Gather") is None
    assert connect.get("action") == "https://hotline.bank.test/ivr/main/keypad?s=7"
    stream = connect.find("Stream")
    assert stream is not None and stream.get("url") == "wss://hotline.bank.test/media"
    params = {p.get("name"): p.get("value") for p in stream.iter("Parameter")}
    assert params == {"call": SID, "node": "main", "s": "7", "lang": "ko"}
    assert doc.find("Say") is None  # the prompt is played over the stream, not said


def test_what_comes_before_the_voice_prompt_is_said_first() -> None:
    r = Renderer(FLOW, "http://127.0.0.1:8080", voice_ok=lambda _g, _s: True)
    doc = render(r, at("anything_else"), Digits("1"))  # back to main
    assert doc.find("Connect") is not None
    stream = doc.find("Connect/Stream")
    assert stream is not None and stream.get("url") == "ws://127.0.0.1:8080/media"
    step = engine.step(FLOW, at("main"), NoInput())  # retry: "no input" then the prompt
    body = xml(r.render(step))
    assert [s.text for s in body.iter("Say")] == [FLOW.message("no_input", "ko")]


def test_keypad_gather_when_speech_cannot_serve() -> None:
    r = Renderer(FLOW, "https://hotline.bank.test", voice_ok=lambda _g, _s: False)
    doc = render(r, at("main"))
    assert doc.find("Connect") is None
    gather = doc.find("Gather")
    assert gather is not None and gather.get("input") == "dtmf"
    assert gather.get("action") == "https://hotline.bank.test/ivr/main?s=7"


def test_keypad_event_renders_a_gather_even_where_voice_could_serve() -> None:
    r = Renderer(FLOW, "https://hotline.bank.test", voice_ok=lambda _g, _s: True)
    doc = render(r, at("main"), Keypad("invalid"))
    assert doc.find("Connect") is None and doc.find("Gather") is not None


@pytest.mark.parametrize(
    ("base", "ws"),
    [("https://a.test", "wss://a.test/media"), ("http://127.0.0.1:9", "ws://127.0.0.1:9/media")],
)
def test_websocket_url(base: str, ws: str) -> None:
    assert websocket_url(base, "/media") == ws


def test_prompts_play_when_rendered_and_numbers_from_fragments() -> None:
    have = {"You are number", "7", "in the queue.", FLOW.message("goodbye", "en")}

    def url(text: str, lang: str) -> str | None:
        return f"https://h.test/prompts/{abs(hash(text))}.wav" if text in have else None

    r = Renderer(FLOW, "https://h.test", prompt_url=url)
    step = engine.Step(
        at("goodbye", lang="en"),
        (
            Say(FLOW.message("goodbye", "en"), "en"),
            Say("You are number 7 in the queue.", "en"),
            Say("You are number 8 in the queue.", "en"),  # "8" not rendered: <Say>
            Say(FLOW.message("closed", "en"), "en"),
        ),
    )
    doc = xml(r.render(step))
    tags = [el.tag for el in doc]
    assert tags == ["Play", "Play", "Play", "Play", "Say", "Say"]


# --- the hooks: keypad when there is no model, no capacity or no rendered prompt ------------


def _main_gather() -> Gather:
    (gather,) = engine.step(FLOW, at("main"), Enter()).verbs
    assert isinstance(gather, Gather)
    return gather


def test_hooks_without_a_recogniser_mean_keypad(tmp_path: Path) -> None:
    hooks = SpeechHooks(FLOW, "https://h.test")
    assert hooks.prompt_url("anything", "ko") is None
    assert not hooks.voice_ok(_main_gather(), at("main"))
    cache = PromptCache(tmp_path, available=False)
    main_ko = FLOW.nodes["main"].prompt["ko"]
    hooks.attach_prompts(cache, {cache.key_for(main_ko, "ko")})
    assert hooks.prompt_url(main_ko, "ko") == (
        f"https://h.test/prompts/{cache.key_for(main_ko, 'ko')}.wav"
    )
    hooks.attach_recognizer(SpeechRecognizer(ModelRegistry({}), max_sessions=1))
    assert not hooks.voice_ok(_main_gather(), at("main"))  # no model for Korean


def test_hooks_need_a_model_a_slot_and_the_rendered_prompt(
    tmp_path: Path, ko_registry: ModelRegistry
) -> None:
    hooks = SpeechHooks(FLOW, "https://h.test")
    cache = PromptCache(tmp_path, available=False)
    rec = SpeechRecognizer(ko_registry, max_sessions=1)
    try:
        hooks.attach_recognizer(rec)
        hooks.attach_prompts(cache, set())
        assert not hooks.voice_ok(_main_gather(), at("main"))  # prompt not rendered yet
        hooks.mark_rendered([cache.key_for(FLOW.nodes["main"].prompt["ko"], "ko")])
        assert hooks.voice_ok(_main_gather(), at("main"))
        assert not hooks.voice_ok(_main_gather(), at("main", lang="en"))  # no English model
        grammar = ko_registry.grammar({"2": ["카드 분실"]}, "ko")
        assert grammar is not None
        held = rec.try_acquire(grammar)
        assert held is not None
        assert not hooks.voice_ok(_main_gather(), at("main"))  # at capacity
        held.close()
        assert hooks.voice_ok(_main_gather(), at("main"))
    finally:
        rec.shutdown()


# --- edges ------------------------------------------------------------------------------


def _start(params: dict[str, str], call_sid: str = SID) -> Start:
    return Start(0, "MZ1", call_sid, "AC1", ("inbound",), MediaFormat(), params)


def test_stream_parameters_parsed_at_the_edge() -> None:
    ok = {"call": SID, "node": "main", "s": "3", "lang": "ko"}
    assert parse_stream_params(_start(ok)).seq == 3
    for bad in (
        {**ok, "call": "CA" + "9" * 32},  # another call's parameters
        {**ok, "s": "x"},
        {**ok, "s": "1234567"},
        {k: v for k, v in ok.items() if k != "node"},
    ):
        with pytest.raises(ValueError):
            parse_stream_params(_start(bad))


def test_prompt_catalog_covers_menus_messages_fragments_and_surveys() -> None:
    items = set(prompt_items(FLOW, CONFIG.surveys))
    assert (FLOW.nodes["main"].prompt["ko"], "ko") in items
    assert (FLOW.message("invalid", "zh"), "zh") in items
    assert ("You are number", "en") in items and ("42", "en") in items
    assert ("예상 대기 시간은 약", "ko") in items  # "{minutes}분" assembles in Korean
    assert not any("{" in text for text, _ in items)  # templates are never rendered whole
    assert (CONFIG.surveys.prompts_for("en").thanks, "en") in items
