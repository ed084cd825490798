"""One voice-menu turn over a bidirectional Twilio Media Stream, independent of aiohttp.

The websocket handler (in `ivr`) passes two callables, `receive()` (the next text message,
None when the socket closed) and `send(text)`, so this runs the same against aiohttp, the
emulator or a list in a test:

    start = await wait_for_start(receive)              # connected/start; None: closed
    grammar = registry.grammar(options_of(node, lang), lang)
    session = recognizer.try_acquire(grammar, call_sid=start.call_sid) if grammar else None
    if session is None: -> continue the call with the keypad version of the node
    async with session:
        turn = await run_turn(receive, send, session, start.stream_sid, prompt_ulaw=...)
    turn.kind: "speech" (turn.match), "dtmf" (turn.digit), "hangup"

`run_turn` sends the prompt as 20 ms `media` messages followed by a `mark`, feeds the
caller's audio to the session, sends `clear` as soon as the caller starts speaking while
the prompt is still playing (barge-in), starts the no-input timer when the prompt's mark
comes back, returns on a final result, a key press or the end of the stream. Malformed
messages are logged and skipped; they never end the turn.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from speech.matching import Match, match
from speech.media_stream import (
    Dtmf,
    DtmfDigit,
    Mark,
    Media,
    Start,
    Stop,
    StreamMessageError,
    clear_message,
    parse_message,
    prompt_messages,
)
from speech.mulaw import SAMPLE_RATE
from speech.recognizer import RecognitionSession, Utterance

log = logging.getLogger("hotline.speech")

Receive = Callable[[], Awaitable[str | None]]
Send = Callable[[str], Awaitable[None]]
MARK_FALLBACK_MS = 1000  # start the no-input timer even if the prompt's mark never returns


@dataclass(frozen=True)
class TurnResult:
    kind: Literal["speech", "dtmf", "hangup"]
    match: Match | None = None
    utterance: Utterance | None = None
    digit: DtmfDigit | None = None
    barged_in: bool = False  # the caller spoke over the prompt (and we cleared it)


async def wait_for_start(receive: Receive) -> Start | None:
    """Skip `connected` (and anything malformed) until `start`; None if the stream ends."""
    while (raw := await receive()) is not None:
        try:
            msg = parse_message(raw)
        except StreamMessageError as exc:
            log.warning("malformed media stream message skipped", extra={"error": str(exc)})
            continue
        if isinstance(msg, Start):
            return msg
        if isinstance(msg, Stop):
            return None
    return None


async def run_turn(
    receive: Receive,
    send: Send,
    session: RecognitionSession,
    stream_sid: str,
    *,
    prompt_ulaw: bytes | None = None,
    mark_name: str = "prompt",
) -> TurnResult:
    extra = {"call_sid": session.call_sid, "stream_sid": stream_sid}
    playing = False
    prompt_ms = 0
    barged_in = False
    if prompt_ulaw:
        for text in prompt_messages(stream_sid, prompt_ulaw, mark=mark_name):
            await send(text)
        playing = True
        prompt_ms = len(prompt_ulaw) * 1000 // SAMPLE_RATE
        session.pause_no_input_timer()
    while (raw := await receive()) is not None:
        try:
            msg = parse_message(raw)
        except StreamMessageError as exc:
            log.warning(
                "malformed media stream message skipped", extra={**extra, "error": str(exc)}
            )
            continue
        if isinstance(msg, Media):
            if msg.track not in ("inbound", "inbound_track"):
                continue
            result = await session.feed(msg.payload)
            if result.speech_started and playing:
                await send(clear_message(stream_sid))
                playing = False
                barged_in = True
                session.start_no_input_timer()
                log.info("caller spoke over the prompt; playback cleared", extra=extra)
            if playing and session.audio_ms >= prompt_ms + MARK_FALLBACK_MS:
                playing = False
                session.start_no_input_timer()
            if result.utterance is not None:
                found = match(result.utterance, session.grammar)
                log.info(
                    "voice turn recognized",  # no transcript: callers may say anything
                    extra={
                        **extra,
                        "match": found.kind.value,
                        "option": found.option,
                        "score": found.score,
                        "end": result.utterance.reason.value,
                    },
                )
                return TurnResult(
                    "speech", match=found, utterance=result.utterance, barged_in=barged_in
                )
        elif isinstance(msg, Mark):
            if msg.name == mark_name and playing:
                playing = False
                session.start_no_input_timer()
        elif isinstance(msg, Dtmf):
            if playing:
                await send(clear_message(stream_sid))
            await session.finish()
            return TurnResult("dtmf", digit=msg.digit, barged_in=barged_in)
        elif isinstance(msg, Stop):
            break
    utterance = await session.finish()
    return TurnResult("hangup", utterance=utterance, barged_in=barged_in)
