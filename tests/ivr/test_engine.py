"""The pure flow engine, without HTTP or Redis."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.loader import load_config
from config.menus import Flow
from ivr import engine
from ivr.engine import (
    ActionDone,
    AuthChecked,
    CheckPin,
    Context,
    Digits,
    Enter,
    Gather,
    Hangup,
    NoInput,
    Recorded,
    RunAction,
    Say,
    Transfer,
)

FLOW: Flow = load_config(Path(__file__).resolve().parents[2] / "config").flow
OPEN = Context(queue_open=lambda _q: True)
CLOSED = Context(queue_open=lambda _q: False)


def at(node: str, lang: str = "en", **kw: object) -> engine.Session:
    return engine.Session(call_sid="CA" + "0" * 32, node=node, lang=lang, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("node", "event", "expected_node", "expected_last_verb"),
    [
        ("language", Digits("1"), "main", Gather),
        ("language", NoInput(), "language", Gather),
        ("main", Digits("1"), "account", Gather),
        ("main", Digits("2"), "lost_card", Transfer),
        ("main", Digits("3"), "anything_else", Gather),
        ("main", Digits("4"), "complaint", Transfer),
        ("main", Digits("9"), "message", type(None)),
        ("main", Digits("0"), "agent", Transfer),
        ("main", Digits("5"), "main", Gather),
        ("main", Digits("12"), "main", Gather),
        ("account", Digits("1234"), "account", Gather),
        ("account", Digits("12345678"), "account", type(None)),
        ("account", engine.LookedUp("C-1"), "pin", Gather),
        ("account", engine.LookedUp(None), "pin", Gather),
        ("anything_else", Digits("9"), "goodbye", Hangup),
    ],
)
def test_step_table(
    node: str, event: engine.Event, expected_node: str, expected_last_verb: type
) -> None:
    result = engine.step(FLOW, at(node), event, OPEN)
    assert result.session.node == expected_node
    if node == "account" and isinstance(event, Digits) and len(event.digits) == 8:
        assert result.pending == engine.Lookup("account", "12345678")
        assert "12345678" not in str(result.session.to_json())
    elif expected_last_verb is type(None):
        assert type(result.verbs[-1]).__name__ == "RecordMessage"
    else:
        assert isinstance(result.verbs[-1], expected_last_verb)


def test_language_choice_sets_the_language() -> None:
    result = engine.step(FLOW, at("language", lang="zh"), Digits("3"), OPEN)
    assert result.session.lang == "ko"
    gather = result.verbs[-1]
    assert isinstance(gather, Gather) and gather.prompts[0].lang == "ko"


def test_complaint_option_flags_the_call() -> None:
    result = engine.step(FLOW, at("main"), Digits("4"), OPEN)
    transfer = result.verbs[-1]
    assert isinstance(transfer, Transfer)
    assert (
        transfer.flags == {"complaint"}
        and transfer.queue == "complaints"
        and transfer.priority == 5
    )


def test_pin_is_asked_for_checking_and_never_kept() -> None:
    session = at("pin", vars={"account": "12345678"})
    asked = engine.step(FLOW, session, Digits("4321"), OPEN)
    assert asked.pending == CheckPin("12345678", "4321")
    assert "4321" not in repr(asked) and "4321" not in str(asked.session.to_json())
    passed = engine.step(
        FLOW, asked.session, AuthChecked(ok=True, customer_id="C-1", vip=True), OPEN
    )
    assert passed.session.vars["customer_id"] == "C-1"
    assert "vip" in passed.session.flags
    assert passed.pending == RunAction("balance", "C-1")


def test_action_result_fills_the_prompt_template() -> None:
    session = at("balance", vars={"customer_id": "C-1"})
    done = engine.step(
        FLOW, session, ActionDone(True, {"amount": "5.00", "currency_en": "won"}), OPEN
    )
    assert done.verbs[0] == Gather(
        "anything_else",
        (Say("Your available balance is 5.00 won.", "en"), *done.verbs[0].prompts[1:]),  # type: ignore[union-attr]
        6,
        num_digits=1,
    )


def test_failed_action_goes_to_its_fallback() -> None:
    done = engine.step(FLOW, at("balance"), ActionDone(False), OPEN)
    assert done.session.node == "agent"


def test_closed_queue_follows_the_after_hours_path() -> None:
    result = engine.step(FLOW, at("main"), Digits("0"), CLOSED)
    assert result.session.node == "closed"
    assert Say("Our advisers are not available at this time.", "en") in result.verbs[-1].prompts  # type: ignore[union-attr]


def test_recording_becomes_a_care_task_effect() -> None:
    result = engine.step(
        FLOW, at("message", flags=frozenset({"complaint"})), Recorded("https://r/1", 9), OPEN
    )
    assert result.session.node == "message_thanks"
    assert result.effects == (engine.CareTask("https://r/1", 9, "en", frozenset({"complaint"})),)


def test_empty_recording_creates_no_task() -> None:
    result = engine.step(FLOW, at("message"), Recorded("", 0), OPEN)
    assert result.effects == ()


def test_reprompt_counts_attempts_and_resets_on_a_new_node() -> None:
    first = engine.step(FLOW, at("main"), NoInput(), OPEN)
    assert first.session.attempts == 1
    moved = engine.step(FLOW, first.session, Digits("1"), OPEN)
    assert moved.session.attempts == 0


def test_session_round_trips_through_json() -> None:
    session = at("pin", vars={"account": "1"}, flags=frozenset({"vip"}), path=("a", "b"), seq=4)
    assert engine.Session.from_json(session.to_json()) == session


@settings(max_examples=300, deadline=None)
@given(
    node=st.sampled_from(sorted(FLOW.nodes)),
    inputs=st.lists(
        st.one_of(st.just(None), st.text("0123456789*#", min_size=1, max_size=10)), max_size=12
    ),
    lang=st.sampled_from(["zh", "en", "ko"]),
    open_=st.booleans(),
)
def test_any_keypad_sequence_always_gets_an_answer(
    node: str, inputs: list[str | None], lang: str, open_: bool
) -> None:
    """Whatever the caller presses, every step answers with something to hear or do."""
    ctx = OPEN if open_ else CLOSED
    session = at(node, lang=lang, vars={"account": "12345678", "customer_id": "C-1"})
    result = engine.step(FLOW, session, Enter(), ctx)
    for pressed in inputs:
        if result.pending is not None:
            follow: engine.Event = (
                AuthChecked(ok=False)
                if isinstance(result.pending, CheckPin)
                else ActionDone(ok=False)
            )
            result = engine.step(FLOW, result.session, follow, ctx)
        assert result.verbs, f"no answer at {result.session.node}"
        if isinstance(result.verbs[-1], (Hangup, Transfer)):
            break
        event: engine.Event = Digits(pressed) if pressed else NoInput()
        if type(result.verbs[-1]).__name__ == "RecordMessage":
            event = Recorded("https://r/x", 3)
        result = engine.step(FLOW, result.session, event, ctx)
