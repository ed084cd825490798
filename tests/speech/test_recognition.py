"""Recognition of the committed Korean fixtures through RecognitionSession (real vosk)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from speech import mulaw
from speech.grammar import Grammar
from speech.matching import MatchKind, match
from speech.recognizer import (
    EndReason,
    ModelRegistry,
    SessionConfig,
    SpeechRecognizer,
    Utterance,
    discover_model_paths,
    packaged_model_path,
)
from tests.speech.demo import FIXTURES, MENU, SLUG_OPTION

VOICES = ("ko", "ko-f2", "ko-m3")
SPEEDS = ("130", "160")

# Fixtures that bench/asr_bench.py measured as routed right at the default thresholds
# (25 of 36, decoding from the start of speech with 300 ms of pre-roll; the same 25 with
# 16 s of prompt silence before the phrase). The other 11 are re-prompted; none may ever be
# routed to a wrong option.
ROUTED = {
    ("agent", "ko", "130"), ("agent", "ko", "160"), ("agent", "ko-f2", "130"),
    ("agent", "ko-f2", "160"), ("agent", "ko-m3", "160"),
    ("balance", "ko", "130"), ("balance", "ko-f2", "130"), ("balance", "ko-f2", "160"),
    ("balance-inquiry", "ko", "130"), ("balance-inquiry", "ko", "160"),
    ("balance-inquiry", "ko-f2", "130"), ("balance-inquiry", "ko-f2", "160"),
    ("balance-inquiry", "ko-m3", "130"), ("balance-inquiry", "ko-m3", "160"),
    ("complaint", "ko-f2", "130"), ("complaint", "ko-f2", "160"),
    ("hours", "ko", "130"), ("hours", "ko", "160"), ("hours", "ko-f2", "130"),
    ("hours", "ko-f2", "160"), ("hours", "ko-m3", "130"), ("hours", "ko-m3", "160"),
    ("lost-card", "ko", "130"), ("lost-card", "ko-m3", "130"), ("lost-card", "ko-m3", "160"),
}  # fmt: skip
IN_GRAMMAR = [(slug, v, s) for slug in SLUG_OPTION for v in VOICES for s in SPEEDS]


def fixture(name: str) -> bytes:
    return mulaw.read_ulaw_wav(FIXTURES / name)


def with_line_silence(ulaw: bytes, seconds: float = 2.0) -> bytes:
    return ulaw + bytes([mulaw.MULAW_SILENCE]) * int(mulaw.SAMPLE_RATE * seconds)


@pytest.fixture(scope="session")
def recognizer(registry: ModelRegistry) -> Iterator[SpeechRecognizer]:
    rec = SpeechRecognizer(registry, max_sessions=4, workers=2)
    yield rec
    rec.shutdown()


async def recognize(
    recognizer: SpeechRecognizer, grammar: Grammar, ulaw: bytes
) -> tuple[Utterance, int | None]:
    """Feed 20 ms frames like the websocket handler; returns the utterance and the frame
    index where speech start was reported."""
    session = recognizer.try_acquire(grammar, call_sid="CAtest")
    assert session is not None
    started_at = None
    async with session:
        for i, frame in enumerate(mulaw.frames(ulaw)):
            result = await session.feed(frame)
            if result.speech_started:
                assert started_at is None, "speech start is reported once"
                started_at = i
            if result.utterance is not None:
                return result.utterance, started_at
        return await session.finish(), started_at


@pytest.mark.parametrize(("slug", "voice", "speed"), IN_GRAMMAR)
async def test_menu_phrase_fixture(
    recognizer: SpeechRecognizer, grammar: Grammar, slug: str, voice: str, speed: str
) -> None:
    ulaw = with_line_silence(fixture(f"ko_{slug}_{voice}_{speed}.wav"))
    utterance, started_at = await recognize(recognizer, grammar, ulaw)
    result = match(utterance, grammar)
    assert started_at is not None and started_at < 40  # the voice starts after 0.3 s
    want = SLUG_OPTION[slug]
    if (slug, voice, speed) in ROUTED:
        assert (result.kind, result.option) == (MatchKind.MATCHED, want), utterance.text
        assert utterance.reason is EndReason.FINAL
    else:  # measured as re-prompted: a confirmation or a repeat, never a wrong route
        assert result.kind is not MatchKind.MATCHED or result.option == want, utterance.text


@pytest.mark.parametrize("voice", VOICES)
@pytest.mark.parametrize("speed", SPEEDS)
@pytest.mark.parametrize("slug", ["oog-weather", "oog-address"])
async def test_out_of_grammar_is_never_routed(
    recognizer: SpeechRecognizer, grammar: Grammar, slug: str, voice: str, speed: str
) -> None:
    ulaw = with_line_silence(fixture(f"ko_{slug}_{voice}_{speed}.wav"))
    utterance, _ = await recognize(recognizer, grammar, ulaw)
    result = match(utterance, grammar)
    assert result.kind is not MatchKind.MATCHED, (utterance.text, result.score)
    if slug == "oog-address":  # all six measured well below the reject threshold
        assert result.kind is MatchKind.NO_MATCH


async def test_silence_is_no_input(registry: ModelRegistry, grammar: Grammar) -> None:
    rec = SpeechRecognizer(registry, max_sessions=1, config=SessionConfig(no_input_ms=3000))
    try:
        ulaw = with_line_silence(fixture("ko_silence_2s.wav"), 2.0)
        utterance, started_at = await recognize(rec, grammar, ulaw)
    finally:
        rec.shutdown()
    assert started_at is None
    assert utterance.reason is EndReason.NO_INPUT
    assert utterance.no_input and utterance.audio_ms >= 3000
    assert match(utterance, grammar).kind is MatchKind.NO_INPUT


async def test_finish_on_keypad_input_mid_utterance(
    recognizer: SpeechRecognizer, grammar: Grammar
) -> None:
    session = recognizer.try_acquire(grammar, call_sid="CAdtmf")
    assert session is not None
    async with session:
        for frame in list(mulaw.frames(fixture("ko_hours_ko_130.wav")))[:20]:
            await session.feed(frame)
        utterance = await session.finish()  # a dtmf event arrived: stop listening
        assert utterance.reason is EndReason.FINISHED
        assert session.done is utterance
        assert (await session.feed(b"\xff" * 160)).utterance is utterance


async def test_decoding_runs_off_the_event_loop(
    recognizer: SpeechRecognizer, grammar: Grammar, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = recognizer.try_acquire(grammar)
    assert session is not None
    threads: set[str] = set()
    original = session._accept

    def spy(data: bytes) -> object:
        threads.add(threading.current_thread().name)
        return original(data)

    monkeypatch.setattr(session, "_accept", spy)
    async with session:  # 1 s: the speech starts after 0.3 s and is decoded from there
        for frame in list(mulaw.frames(fixture("ko_agent_ko_130.wav")))[:50]:
            await session.feed(frame)
    assert threads and all(name.startswith("vosk") for name in threads)


async def test_capacity_refuses_and_logs(
    registry: ModelRegistry, grammar: Grammar, caplog: pytest.LogCaptureFixture
) -> None:
    rec = SpeechRecognizer(registry, max_sessions=1)
    try:
        first = rec.try_acquire(grammar, call_sid="CA1")
        assert first is not None and rec.active == 1
        with caplog.at_level(logging.WARNING, logger="hotline.speech"):
            assert rec.try_acquire(grammar, call_sid="CA2") is None
        record = next(r for r in caplog.records if "capacity" in r.getMessage())
        assert getattr(record, "call_sid", None) == "CA2"
        first.close()
        first.close()  # idempotent
        assert rec.active == 0
        again = rec.try_acquire(grammar, call_sid="CA3")
        assert again is not None
        again.close()
    finally:
        rec.shutdown()


def test_language_without_model_gets_keypad(recognizer: SpeechRecognizer) -> None:
    zh = Grammar(lang="zh", phrases={"agent": ("人工",)})
    assert not recognizer.available("zh")
    assert recognizer.try_acquire(zh) is None
    assert recognizer.registry.grammar(MENU, "zh") is None


def test_model_discovery_from_env(tmp_path: Path) -> None:
    env = {"VOSK_MODEL_PATH_ZH": str(tmp_path), "VOSK_MODEL_PATH_EN_US": "/m/en", "OTHER": "x"}
    paths = discover_model_paths(env, include_packaged=False)
    assert paths == {"zh": tmp_path, "en-us": Path("/m/en")}
    packaged = packaged_model_path("ko")
    assert packaged is not None and (packaged / "am" / "final.mdl").is_file()
    assert discover_model_paths({})["ko"] == packaged
    assert discover_model_paths({"VOSK_MODEL_PATH_KO": "/x"})["ko"] == Path("/x")


def test_bad_model_path_is_a_warning_not_a_crash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from speech.recognizer import ModelLoadError

    with caplog.at_level(logging.WARNING, logger="hotline.speech"):
        reg = ModelRegistry.load({"zh": tmp_path / "missing", "fr": tmp_path})
    assert reg.languages == ()
    assert sum("keypad" in r.getMessage() for r in caplog.records) == 2
    with pytest.raises(ModelLoadError):
        ModelRegistry.load({"zh": tmp_path / "missing"}, strict=True)


def test_korean_model_has_no_unk_so_the_grammar_uses_fillers(grammar: Grammar) -> None:
    assert not grammar.use_unk
    assert grammar.fillers and not grammar.dropped


async def test_transcribe_a_recorded_comment(recognizer: SpeechRecognizer) -> None:
    speech = await recognizer.transcribe(fixture("ko_oog-weather_ko-f2_130.wav"), "ko")
    assert speech is not None and len(speech) >= 1  # free-form: some Korean words
    assert all(w.word for w in speech)
    quiet = await recognizer.transcribe(fixture("ko_silence_2s.wav"), "ko")
    assert quiet == ()
    assert await recognizer.transcribe(b"\xff" * 800, "zh") is None
    assert recognizer.active == 0


async def test_concurrent_calls_share_a_small_pool_and_the_loop_stays_responsive(
    registry: ModelRegistry, grammar: Grammar
) -> None:
    import asyncio
    import time

    rec = SpeechRecognizer(registry, max_sessions=4, workers=1)
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - t - 0.005)

    names = ["ko_hours_ko_130.wav", "ko_agent_ko_160.wav", "ko_lost-card_ko_130.wav",
             "ko_complaint_ko-f2_130.wav"]  # fmt: skip
    tick = asyncio.create_task(ticker())
    try:
        results = await asyncio.gather(
            *(recognize(rec, grammar, with_line_silence(fixture(n))) for n in names)
        )
    finally:
        stop.set()
        await tick
        rec.shutdown()
    options = [match(u, grammar).option for u, _ in results]
    assert options == ["hours", "agent", "lost_card", "complaint"]
    assert max(lags) < 0.25, max(lags)  # decoding never held the loop for long
