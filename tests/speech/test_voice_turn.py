"""A voice-menu turn over a (fake) Media Stream websocket, with real vosk and fixtures."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest

from speech import mulaw
from speech.grammar import Grammar
from speech.matching import MatchKind
from speech.media_stream import DtmfDigit
from speech.recognizer import ModelRegistry, SessionConfig, SpeechRecognizer
from speech.voice_turn import Receive, run_turn, wait_for_start
from tests.speech.demo import FIXTURES

SID = "MZ00000000000000000000000000000001"
SILENCE_FRAME = bytes([mulaw.MULAW_SILENCE]) * 160
PROMPT = bytes([0x20, 0xA0]) * 4000  # 1 s of a loud tone, as our prompt


@pytest.fixture(scope="module")
def recognizer(registry: ModelRegistry) -> Iterator[SpeechRecognizer]:
    rec = SpeechRecognizer(registry, max_sessions=2, config=SessionConfig(no_input_ms=3000))
    yield rec
    rec.shutdown()


def media(frame: bytes, chunk: int = 1) -> str:
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": str(chunk + 1),
            "media": {
                "track": "inbound",
                "chunk": str(chunk),
                "timestamp": str(chunk * 20),
                "payload": base64.b64encode(frame).decode(),
            },
            "streamSid": SID,
        }
    )


def audio(ulaw: bytes) -> list[str]:
    return [media(f, i) for i, f in enumerate(mulaw.frames(ulaw))]


def silence(seconds: float) -> list[str]:
    return [media(SILENCE_FRAME)] * int(seconds * 50)


def fixture(name: str) -> bytes:
    return mulaw.read_ulaw_wav(FIXTURES / name)


MARK = json.dumps({"event": "mark", "streamSid": SID, "mark": {"name": "prompt"}})
STOP = json.dumps({"event": "stop", "streamSid": SID, "stop": {"callSid": "CA1"}})
START = json.dumps(
    {
        "event": "start",
        "start": {
            "streamSid": SID,
            "callSid": "CA1",
            "accountSid": "AC1",
            "tracks": ["inbound"],
            "customParameters": {"node": "main", "lang": "ko"},
        },
        "streamSid": SID,
    }
)


class FakeSocket:
    def __init__(self, messages: list[str]) -> None:
        self._incoming = iter(messages)
        self.sent: list[dict[str, object]] = []

    async def receive(self) -> str | None:
        return next(self._incoming, None)

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))

    def events(self) -> list[object]:
        return [m["event"] for m in self.sent]


async def test_wait_for_start_skips_connected_and_garbage() -> None:
    ws = FakeSocket(['{"event": "connected", "protocol": "Call", "version": "1.0.0"}',
                     "garbage", '{"event": "media"}', START])  # fmt: skip
    receive: Receive = ws.receive
    start = await wait_for_start(receive)
    assert start is not None and start.call_sid == "CA1"
    assert start.custom_parameters == {"node": "main", "lang": "ko"}
    assert await wait_for_start(FakeSocket([STOP]).receive) is None
    assert await wait_for_start(FakeSocket([]).receive) is None


async def test_caller_answers_after_the_prompt(
    recognizer: SpeechRecognizer, grammar: Grammar
) -> None:
    ws = FakeSocket(
        silence(1.0) + [MARK] + silence(0.5) + audio(fixture("ko_hours_ko_130.wav"))
        + silence(2.0)
    )  # fmt: skip
    session = recognizer.try_acquire(grammar, call_sid="CA1")
    assert session is not None
    async with session:
        turn = await run_turn(ws.receive, ws.send, session, SID, prompt_ulaw=PROMPT)
    assert turn.kind == "speech" and turn.match is not None
    assert (turn.match.kind, turn.match.option) == (MatchKind.MATCHED, "hours")
    assert not turn.barged_in
    assert ws.events() == ["media"] * 50 + ["mark"]  # 1 s of 20 ms frames, then the mark


async def test_caller_interrupts_the_prompt_and_playback_is_cleared(
    recognizer: SpeechRecognizer, grammar: Grammar
) -> None:
    ws = FakeSocket(audio(fixture("ko_lost-card_ko_130.wav")) + silence(2.0))
    session = recognizer.try_acquire(grammar, call_sid="CA1")
    assert session is not None
    async with session:
        turn = await run_turn(ws.receive, ws.send, session, SID, prompt_ulaw=PROMPT * 5)
    assert turn.barged_in
    assert ws.events()[-1] == "clear"
    assert turn.match is not None and turn.match.option == "lost_card"


async def test_key_press_during_the_prompt(recognizer: SpeechRecognizer, grammar: Grammar) -> None:
    dtmf = json.dumps({"event": "dtmf", "streamSid": SID, "dtmf": {"digit": "2"}})
    ws = FakeSocket(silence(0.3) + [dtmf] + silence(1))
    session = recognizer.try_acquire(grammar, call_sid="CA1")
    assert session is not None
    async with session:
        turn = await run_turn(ws.receive, ws.send, session, SID, prompt_ulaw=PROMPT)
    assert (turn.kind, turn.digit) == ("dtmf", DtmfDigit.D2)
    assert ws.events()[-1] == "clear"


async def test_silence_after_the_prompt_is_no_input(
    recognizer: SpeechRecognizer, grammar: Grammar
) -> None:
    # The prompt is 1 s and its mark comes back late: the no-input timer (3 s) runs from
    # the mark, so 3.5 s of silence before it would not count.
    ws = FakeSocket(silence(3.5) + [MARK] + silence(4.0))
    session = recognizer.try_acquire(grammar, call_sid="CA1")
    assert session is not None
    async with session:
        turn = await run_turn(ws.receive, ws.send, session, SID, prompt_ulaw=PROMPT * 4)
        assert session.audio_ms >= 6500
    assert turn.kind == "speech" and turn.match is not None
    assert turn.match.kind is MatchKind.NO_INPUT


async def test_malformed_and_out_of_order_messages_do_not_end_the_turn(
    recognizer: SpeechRecognizer, grammar: Grammar
) -> None:
    junk = [
        "{not json",
        '{"event": "dtmf", "streamSid": "MZ1", "dtmf": {"digit": "X"}}',
        START,  # a second start mid-stream: ignored by the turn
        '{"event": "mark", "streamSid": "MZ1", "mark": {"name": "someone-else"}}',
        '{"event": "media", "streamSid": "MZ1", "media": {"payload": "!!"}}',
        '{"event": "brandNewEvent"}',
    ]
    ws = FakeSocket(junk + audio(fixture("ko_agent_ko_130.wav")) + silence(2.0))
    session = recognizer.try_acquire(grammar, call_sid="CA1")
    assert session is not None
    async with session:
        turn = await run_turn(ws.receive, ws.send, session, SID)
    assert turn.match is not None and turn.match.option == "agent"
    assert ws.sent == []  # no prompt, nothing to clear


async def test_hangup_mid_turn(recognizer: SpeechRecognizer, grammar: Grammar) -> None:
    ws = FakeSocket(silence(0.5) + [STOP] + silence(1))
    session = recognizer.try_acquire(grammar, call_sid="CA1")
    assert session is not None
    async with session:
        turn = await run_turn(ws.receive, ws.send, session, SID)
    assert turn.kind == "hangup"
    assert recognizer.active == 0


async def test_barge_in_clears_on_the_onset_frame_before_any_decoding(
    recognizer: SpeechRecognizer, grammar: Grammar, monkeypatch: pytest.MonkeyPatch
) -> None:
    tone = bytes([0x20, 0xA0]) * 80
    ws = FakeSocket(silence(0.5) + [media(tone)] * 10 + silence(0.5) + [STOP])
    consumed = 0
    receive = ws.receive

    async def counting_receive() -> str | None:
        nonlocal consumed
        consumed += 1
        return await receive()

    session = recognizer.try_acquire(grammar, call_sid="CA1")
    assert session is not None
    decoded: list[int] = []
    accept = session._accept

    def spy(data: bytes) -> object:
        decoded.append(len(data))
        return accept(data)

    monkeypatch.setattr(session, "_accept", spy)
    cleared_at: list[tuple[int, int]] = []

    async def send(text: str) -> None:
        await ws.send(text)
        if ws.sent[-1]["event"] == "clear":
            cleared_at.append((consumed, len(decoded)))

    async with session:
        turn = await run_turn(counting_receive, send, session, SID, prompt_ulaw=PROMPT * 5)
    assert turn.barged_in
    assert cleared_at == [(25 + 3, 0)]  # on the third loud frame, nothing decoded yet
    assert decoded  # and the speech was decoded afterwards
