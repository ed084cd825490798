"""Media Streams: message format and behaviour, against a websocket server of our own."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from emulator import CallerScript, CarrierEmulator, Keys, Speak
from emulator.audio import make_wav

from .conftest import FakeService, eventually, twiml

PROMPT = bytes([0x7E]) * 160 * 25  # 500 ms of (non-silent) mu-law


@dataclass
class WsServer:
    """Plays a prompt with a mark, waits for the caller, then hangs up the socket."""

    received: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "turn"  # turn | dtmf | hold | clear
    closed_by_us: bool = False
    url: str = ""

    def events(self, name: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("event") == name]

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        stream_sid = ""
        spoke = False
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            self.received.append(data)
            event = data["event"]
            if event == "start":
                stream_sid = data["streamSid"]
                payload = base64.b64encode(PROMPT).decode()
                await ws.send_json(
                    {"event": "media", "streamSid": stream_sid, "media": {"payload": payload}}
                )
                await ws.send_json({"event": "mark", "streamSid": stream_sid,
                                    "mark": {"name": "prompt-done"}})
                if self.mode == "clear":
                    long = base64.b64encode(bytes([0x7E]) * 160 * 250).decode()
                    await ws.send_json(
                        {"event": "media", "streamSid": stream_sid, "media": {"payload": long}}
                    )
                    await ws.send_json({"event": "mark", "streamSid": stream_sid,
                                        "mark": {"name": "long-done"}})
                    await ws.send_json({"event": "clear", "streamSid": stream_sid})
            elif event == "media" and self.mode == "turn":
                audio = base64.b64decode(data["media"]["payload"])
                if any(b != 0xFF for b in audio):
                    spoke = True
            elif event == "dtmf" and (self.mode == "dtmf" or (self.mode == "turn" and spoke)):
                self.closed_by_us = True
                await ws.close()
            elif event == "stop":
                break
        return ws


@pytest.fixture
async def ws_server(aiohttp_server: Any) -> WsServer:
    srv = WsServer()
    app = web.Application()
    app.router.add_get("/media", srv.handle)
    server = await aiohttp_server(app)
    srv.url = str(server.make_url("/media")).replace("http://", "ws://")
    return srv


def connect_twiml(url: str) -> str:
    return twiml(
        f'<Connect><Stream url="{url}" statusCallback="/stream-status">'
        '<Parameter name="node" value="main"/>'
        '<Parameter name="lang" value="ko"/></Stream></Connect><Say>after the stream</Say>'
    )


async def test_bidirectional_stream_messages(
    service: FakeService, emu: CarrierEmulator, ws_server: WsServer, tmp_path: Path
) -> None:
    wav = tmp_path / "balance.wav"
    wav.write_bytes(make_wav(0.6, tone_hz=440.0, rate=16000))
    service.route("/voice", connect_twiml(ws_server.url))
    call = await emu.place_inbound_call(
        voice_url=service.url("/voice"), from_="+1", to="+2",
        script=CallerScript(stream_inputs=(Speak(wav), Keys("1"))),
    )
    tr = await call.wait_finished(20)
    msgs = ws_server.received
    assert msgs[0] == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    start = msgs[1]
    assert start["event"] == "start" and start["sequenceNumber"] == "1"
    body = start["start"]
    assert body["callSid"] == call.sid and body["accountSid"] == emu.account_sid
    assert body["streamSid"] == start["streamSid"] and body["streamSid"].startswith("MZ")
    assert body["tracks"] == ["inbound"]
    assert body["customParameters"] == {"node": "main", "lang": "ko"}
    assert body["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    media = ws_server.events("media")
    assert [m["media"]["chunk"] for m in media[:3]] == ["1", "2", "3"]
    assert [m["media"]["timestamp"] for m in media[:3]] == ["0", "20", "40"]
    assert all(len(base64.b64decode(m["media"]["payload"])) == 160 for m in media)
    assert media[0]["media"]["track"] == "inbound"
    seqs = [int(m["sequenceNumber"]) for m in msgs[1:]]
    assert seqs == list(range(1, len(seqs) + 1))
    assert [m["mark"]["name"] for m in ws_server.events("mark")] == ["prompt-done"]
    (dtmf,) = ws_server.events("dtmf")
    assert dtmf["dtmf"] == {"track": "inbound_track", "digit": "1"}
    spoken = [m for m in media if set(base64.b64decode(m["media"]["payload"])) != {0xFF}]
    assert 28 <= len(spoken) <= 31  # 0.6 s of speech in 20 ms frames
    assert ws_server.closed_by_us and ws_server.events("stop") == []
    step = tr.steps[0]
    assert step.input == ["say:balance.wav", "dtmf:1"]
    assert [h.ms for h in step.heard if h.kind == "stream"] == [500]
    assert tr.heard_text() == ["after the stream"]
    events = [r.params["StreamEvent"] for r in service.at("/stream-status")]
    assert events == ["stream-started", "stream-stopped"]
    assert service.at("/stream-status")[0].params["StreamSid"] == body["streamSid"]


async def test_rest_redirect_stops_the_stream(
    service: FakeService, emu: CarrierEmulator, ws_server: WsServer, aiohttp_server: Any
) -> None:
    ws_server.mode = "hold"
    rest = await aiohttp_server(emu.rest_app())
    service.route("/voice", connect_twiml(ws_server.url))
    service.route("/next", twiml("<Say>recognised: balance</Say>"))
    call = await emu.place_inbound_call(voice_url=service.url("/voice"), from_="+1", to="+2")
    await eventually(lambda: len(ws_server.events("media")) > 50)
    from twilio.rest import Client

    client = Client(emu.account_sid, emu.auth_token)
    client.api.base_url = str(rest.make_url("")).rstrip("/")
    await asyncio.to_thread(client.calls(call.sid).update, url=service.url("/next"))
    tr = await call.wait_finished(10)
    (stop,) = ws_server.events("stop")
    assert stop["stop"] == {"accountSid": emu.account_sid, "callSid": call.sid}
    assert stop["streamSid"] == ws_server.events("start")[0]["streamSid"]
    assert tr.heard_text() == ["recognised: balance"]


async def test_clear_drops_queued_audio_and_returns_marks(
    service: FakeService, emu: CarrierEmulator, ws_server: WsServer
) -> None:
    ws_server.mode = "clear"
    service.route("/voice", connect_twiml(ws_server.url))
    call = await emu.place_inbound_call(
        voice_url=service.url("/voice"), from_="+1", to="+2",
        script=CallerScript(hangup_after=3),
    )
    tr = await call.wait_finished(10)
    names = [m["mark"]["name"] for m in ws_server.events("mark")]
    assert sorted(names) == ["long-done", "prompt-done"]
    heard_ms = [h.ms for h in tr.steps[0].heard if h.kind == "stream"][0]
    assert heard_ms < 1000  # the 5 s after the first prompt were cleared
    assert ws_server.events("stop")  # the caller hung up: Twilio says stop
    assert tr.outcome.hangup_reason == "caller-hangup"


async def test_start_stream_forks_until_stop(
    service: FakeService, emu: CarrierEmulator, ws_server: WsServer
) -> None:
    ws_server.mode = "hold"
    service.route(
        "/voice",
        twiml(
            f'<Start><Stream name="rec" track="both_tracks" url="{ws_server.url}"/></Start>'
            '<Say>this call is recorded</Say><Pause length="2"/>'
            '<Stop><Stream name="rec"/></Stop><Say>done</Say>'
        ),
    )
    call = await emu.place_inbound_call(voice_url=service.url("/voice"), from_="+1", to="+2")
    tr = await call.wait_finished(10)
    start = ws_server.events("start")[0]["start"]
    assert start["tracks"] == ["inbound", "outbound"]
    tracks = {m["media"]["track"] for m in ws_server.events("media")}
    assert tracks == {"inbound", "outbound"}
    assert len(ws_server.events("stop")) == 1
    assert tr.heard_text() == ["this call is recorded", "done"]


async def test_unreachable_stream_is_31920_and_the_call_goes_on(
    service: FakeService, emu: CarrierEmulator
) -> None:
    service.route("/voice", connect_twiml("ws://127.0.0.1:9/media"))
    call = await emu.place_inbound_call(voice_url=service.url("/voice"), from_="+1", to="+2")
    tr = await call.wait_finished(10)
    assert [e.code for e in emu.errors] == [31920]
    assert tr.heard_text() == ["after the stream"]
    assert [r.params["StreamEvent"] for r in service.at("/stream-status")] == ["stream-error"]


async def test_connect_action_is_requested_when_the_server_hangs_up(
    service: FakeService, emu: CarrierEmulator, ws_server: WsServer
) -> None:
    ws_server.mode = "dtmf"
    service.route(
        "/voice",
        twiml(f'<Connect action="/after"><Stream url="{ws_server.url}"/></Connect><Say>no</Say>'),
    )
    service.route("/after", twiml("<Say>back from the stream</Say>"))
    call = await emu.place_inbound_call(
        voice_url=service.url("/voice"), from_="+1", to="+2",
        script=CallerScript(stream_inputs=(Keys("5"),)),
    )
    tr = await call.wait_finished(10)
    assert len(service.at("/after")) == 1
    assert tr.heard_text() == ["back from the stream"]
