"""RecognitionSession: batched decoder jobs, decoding only from the start of speech (with
pre-roll), and barge-in that never waits for the decoder. Real vosk, synthetic audio."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from speech.grammar import Grammar
from speech.mulaw import FRAME_BYTES, MULAW_SILENCE
from speech.recognizer import (
    EndReason,
    ModelRegistry,
    RecognitionSession,
    SessionConfig,
    SpeechRecognizer,
)

SILENCE = bytes([MULAW_SILENCE]) * FRAME_BYTES
TONE = bytes([0x20, 0xA0]) * (FRAME_BYTES // 2)  # loud enough to be speech


@pytest.fixture(scope="module")
def recognizer(registry: ModelRegistry) -> Iterator[SpeechRecognizer]:
    rec = SpeechRecognizer(registry, max_sessions=2, config=SessionConfig(no_input_ms=1000))
    yield rec
    rec.shutdown()


def spy_jobs(session: RecognitionSession, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The chunks handed to the decoder, in order."""
    chunks: list[bytes] = []
    accept, final = session._accept, session._final

    def on_accept(data: bytes) -> object:
        chunks.append(data)
        return accept(data)

    def on_final(data: bytes) -> object:
        chunks.append(data)
        return final(data)

    monkeypatch.setattr(session, "_accept", on_accept)
    monkeypatch.setattr(session, "_final", on_final)
    return chunks


async def test_silence_is_never_decoded_and_ends_as_no_input(
    recognizer: SpeechRecognizer, grammar: Grammar, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = recognizer.try_acquire(grammar)
    assert session is not None
    chunks = spy_jobs(session, monkeypatch)
    async with session:
        fed = 0
        while (result := await session.feed(SILENCE)).utterance is None and fed < 60:
            fed += 1
        assert result.utterance is not None and result.utterance.reason is EndReason.NO_INPUT
        assert result.utterance.audio_ms == 1000
        assert session._recognizer is None and chunks == []


async def test_decoding_starts_300_ms_before_the_onset_in_200_ms_jobs(
    recognizer: SpeechRecognizer, grammar: Grammar, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = recognizer.try_acquire(grammar)
    assert session is not None
    chunks = spy_jobs(session, monkeypatch)
    audio = [SILENCE] * 40 + [TONE] * 40 + [SILENCE] * 20
    onset = None
    async with session:
        for i, frame in enumerate(audio):
            if (await session.feed(frame)).speech_started:
                onset = i
                assert chunks == []  # reported before any decoding
        await session.finish()
    assert onset == 42  # the third loud frame
    sent = b"".join(audio)
    start = onset * FRAME_BYTES - 2400  # 300 ms of pre-roll
    assert b"".join(chunks) == sent[start:]
    assert len(chunks[0]) == 2400 + 2 * FRAME_BYTES  # pre-roll, the onset frame, one more
    assert all(len(c) == 1600 for c in chunks[1:-1])  # 200 ms per job
    assert len(chunks) == 1 + (len(sent) - start - len(chunks[0])) // 1600 + 1


async def test_without_the_gate_everything_is_decoded(
    registry: ModelRegistry, grammar: Grammar, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = SpeechRecognizer(registry, max_sessions=1, config=SessionConfig(gate=False))
    try:
        session = rec.try_acquire(grammar)
        assert session is not None
        chunks = spy_jobs(session, monkeypatch)
        async with session:
            for _ in range(30):
                await session.feed(SILENCE)
            await session.finish()
        assert b"".join(chunks) == SILENCE * 30
    finally:
        rec.shutdown()


async def test_word_times_count_from_the_start_of_the_stream(
    recognizer: SpeechRecognizer, grammar: Grammar
) -> None:
    from speech import mulaw
    from tests.speech.demo import FIXTURES

    phrase = mulaw.read_ulaw_wav(FIXTURES / "ko_hours_ko_130.wav")
    lead = SILENCE * 250  # 5 s, not decoded
    session = recognizer.try_acquire(grammar)
    assert session is not None
    session.pause_no_input_timer()
    async with session:
        for frame in mulaw.frames(lead + phrase + SILENCE * 100):
            if (result := await session.feed(frame)).utterance is not None:
                break
        utterance = result.utterance or await session.finish()
    assert utterance.words
    assert 5.0 <= utterance.words[0].start < utterance.words[-1].end < 5.0 + len(phrase) / 8000
