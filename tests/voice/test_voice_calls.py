"""Voice menus end to end: the real service (Korean model, rendered prompts, Redis) and the
carrier emulator streaming the Korean fixtures over Media Streams."""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
import pytest

from emulator import CallerScript, Keys, Speak
from emulator.signing import SIGNATURE_HEADER, compute_signature
from emulator.transcript import Transcript
from ivr.appkeys import SESSIONS
from ivr.engine import Session
from speech.mulaw import SAMPLE_RATE
from tests.voice.conftest import AUTH_TOKEN, VoiceLine, fixture

KO = "3"  # the language menu's key for Korean
LOST_CARD_KO = "카드 분실 신고 담당자에게 연결해 드리겠습니다."
COMPLAINT_KO = "고객 관리팀에 연결해 드리겠습니다."
HOURS_KO = "상담 시간은 중국 시간 기준"
AGENT_KO = "상담원에게 연결해 드리겠습니다."


def caller(**kw: Any) -> CallerScript:
    """A caller who waits for the service however long the decoding takes: at 20x speed
    a busy test machine lags, and the emulator's idle hang-up runs on emulated time."""
    kw.setdefault("stream_idle_hangup", 600.0)
    kw.setdefault("patience", 3)
    return CallerScript(**kw)


async def place(line: VoiceLine, script: CallerScript, *, n: int = 0) -> Transcript:
    call = await line.emu.place_inbound_call(
        voice_url=line.voice_url, from_=f"+8210000{n:05d}", to="+8215880000", script=script
    )
    return await call.wait_finished(30)


def stream_ms(t: Transcript) -> list[int]:
    return [h.ms for s in t.steps for h in s.heard if h.kind == "stream"]


def prompt_ms(line: VoiceLine) -> int:
    ulaw = line.service.cache.load_ulaw(line.config.flow.nodes["main"].prompt["ko"], "ko")
    assert ulaw is not None
    return len(ulaw) * 1000 // SAMPLE_RATE


def said(t: Transcript) -> str:
    return " ".join(t.heard_text())


@pytest.mark.parametrize(
    ("wav", "expect"),
    [
        ("ko_lost-card_ko_130.wav", LOST_CARD_KO),
        ("ko_complaint_ko-f2_130.wav", COMPLAINT_KO),
        ("ko_hours_ko-m3_160.wav", HOURS_KO),
    ],
)
async def test_caller_says_an_option_and_lands_on_its_node(
    voice_line: VoiceLine, wav: str, expect: str
) -> None:
    script = caller(
        presses=(KO, "9"), stream_inputs=(Speak(fixture(wav)),), hangup_after=120
    )
    t = await place(voice_line, script)
    assert expect in said(t), t.to_json()
    assert stream_ms(t) and stream_ms(t)[0] >= prompt_ms(voice_line)  # heard the whole prompt
    timing = voice_line.service.timings[-1]
    assert timing.outcome.startswith("option:") and not timing.barged_in
    assert t.errors == []


async def test_silence_reprompts_then_the_keypad_menu(voice_line: VoiceLine) -> None:
    script = caller(presses=(KO, "0"), stream_inputs=())
    t = await place(voice_line, script, n=1)
    # three turns on one stream: the prompt, then no_input + prompt twice
    assert stream_ms(t)[0] >= 3 * prompt_ms(voice_line)
    assert voice_line.service.timings[-1].outcome == "keypad:no_input"
    verbs = [s.verbs for s in t.steps]
    assert "Connect" in verbs[1] and "Gather" in verbs[2]  # then main by keypad
    assert AGENT_KO in said(t)  # "0" on the keypad menu
    assert t.outcome.queued


async def test_out_of_grammar_speech_is_not_routed(voice_line: VoiceLine) -> None:
    oog = ("ko_oog-weather_ko_160.wav", "ko_oog-address_ko_130.wav", "ko_oog-weather_ko-f2_130.wav")
    script = caller(
        presses=(KO, "4"), stream_inputs=tuple(Speak(fixture(w)) for w in oog)
    )
    t = await place(voice_line, script, n=2)
    assert voice_line.service.timings[-1].outcome == "keypad:invalid"
    assert COMPLAINT_KO in said(t)  # routed only by the key pressed afterwards
    assert t.outcome.queued


async def test_key_pressed_during_the_prompt(voice_line: VoiceLine) -> None:
    script = caller(
        presses=(KO,), stream_inputs=(Keys("2"),), stream_wait=0.0
    )
    t = await place(voice_line, script, n=3)
    assert LOST_CARD_KO in said(t)
    assert stream_ms(t)[0] < prompt_ms(voice_line)  # playback cleared
    assert voice_line.service.timings[-1].outcome == "option:2"


async def test_caller_interrupts_the_prompt(
    voice_line: VoiceLine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hotline.speech")
    script = caller(
        presses=(KO,),
        stream_inputs=(Speak(fixture("ko_lost-card_ko_130.wav")),),
        stream_wait=0.0,
    )
    t = await place(voice_line, script, n=4)
    # the emulator applied our `clear`: the caller heard only part of the prompt
    assert stream_ms(t)[0] < prompt_ms(voice_line) // 2
    assert any("playback cleared" in r.getMessage() for r in caplog.records)
    assert voice_line.service.timings[-1].barged_in
    assert LOST_CARD_KO in said(t)


async def _at_main(line: VoiceLine, call_sid: str) -> None:
    session = Session(call_sid=call_sid, node="main", lang="ko", seq=1)
    applied, _ = await line.app[SESSIONS].advance(-1, session, "<Response/>")
    assert applied


def _ws_url(line: VoiceLine) -> str:
    return line.base_url.replace("http://", "ws://") + "/media"


def _start(call_sid: str, seq: int = 1) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "start": {
                "streamSid": "MZ" + "1" * 32,
                "callSid": call_sid,
                "accountSid": "AC1",
                "tracks": ["inbound"],
                "customParameters": {"call": call_sid, "node": "main", "s": str(seq), "lang": "ko"},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
            "streamSid": "MZ" + "1" * 32,
        }
    )


async def test_malformed_and_out_of_order_messages_do_not_kill_the_stream(
    voice_line: VoiceLine,
) -> None:
    call_sid = "CA" + "5" * 32
    await _at_main(voice_line, call_sid)
    url = _ws_url(voice_line)
    headers = {SIGNATURE_HEADER: compute_signature(AUTH_TOKEN, url)}
    sid = "MZ" + "1" * 32
    received: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=headers) as ws:
        for junk in (
            "not json",
            "[1, 2]",
            json.dumps({"event": "media", "streamSid": sid}),  # before start, and no payload
            json.dumps({"event": "dtmf", "streamSid": sid, "dtmf": {"digit": "x"}}),
            json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": "early"}}),
            json.dumps({"event": "no-such-event"}),
        ):
            await ws.send_str(junk)
        await ws.send_bytes(b"\x00\x01")
        await ws.send_str(json.dumps({"event": "connected", "protocol": "Call"}))
        await ws.send_str(_start(call_sid))
        bad_media = {"event": "media", "streamSid": sid, "media": {"payload": "%%"}}
        await ws.send_str(json.dumps(bad_media))
        key = {"event": "dtmf", "streamSid": sid, "dtmf": {"track": "inbound_track", "digit": "2"}}
        await ws.send_str(json.dumps(key))
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                received.append(json.loads(msg.data))
    events = [m["event"] for m in received]
    assert events.count("media") > 100 and "mark" in events and events[-1] == "clear"
    stored = await voice_line.app[SESSIONS].load(call_sid)
    assert stored is not None and stored.seq == 2 and stored.session.node == "lost_card"


async def test_stale_stream_changes_nothing(voice_line: VoiceLine) -> None:
    call_sid = "CA" + "6" * 32
    await _at_main(voice_line, call_sid)
    url = _ws_url(voice_line)
    headers = {SIGNATURE_HEADER: compute_signature(AUTH_TOKEN, url)}
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=headers) as ws:
        await ws.send_str(_start(call_sid, seq=0))  # an older step
        msg = await ws.receive(timeout=5)
        assert msg.type in {aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED}
    stored = await voice_line.app[SESSIONS].load(call_sid)
    assert stored is not None and stored.seq == 1 and stored.session.node == "main"


@pytest.mark.parametrize("signature", [None, "forged", "url-of-another-host"])
async def test_forged_websocket_upgrade_is_refused(
    voice_line: VoiceLine, signature: str | None
) -> None:
    url = _ws_url(voice_line)
    headers = {}
    if signature == "forged":
        headers[SIGNATURE_HEADER] = compute_signature("not-the-token", url)
    elif signature:
        headers[SIGNATURE_HEADER] = compute_signature(AUTH_TOKEN, "wss://evil.test/media")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.ws_connect(url, headers=headers)
    assert info.value.status == 403
