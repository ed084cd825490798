"""Media Streams: the emulator as Twilio's websocket client.

Messages follow https://www.twilio.com/docs/voice/media-streams/websocket-messages:
`connected`, then `start` (accountSid, callSid, streamSid, tracks, customParameters,
mediaFormat {audio/x-mulaw, 8000, 1}), then `media` every 20 ms (base64 mu-law, with
`chunk` and `timestamp` as strings), `dtmf` for keypad presses, `mark` when a mark the
server sent has been played, and `stop`. From the server (<Connect><Stream> only) it
accepts `media` (played to the caller, counted in the transcript), `mark` and `clear`.

<Connect><Stream> blocks the TwiML until the server closes the socket (then the verb
after <Connect> runs) or the call is redirected / hung up (the emulator sends `stop`).
<Start><Stream> forks the caller's audio in the background until the call ends or a
<Stop><Stream> names it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections import deque
from typing import Any
from urllib.parse import urljoin

import aiohttp

from emulator.audio import FRAME_BYTES, FRAME_MS, MULAW_SILENCE, frames, wav_to_mulaw
from emulator.calls import Call
from emulator.errors import entry
from emulator.parties import Keys, Speak
from emulator.signing import SIGNATURE_HEADER, compute_signature
from emulator.transcript import Heard, Step
from emulator.twiml import Stream

log = logging.getLogger("hotline.emulator")

SILENCE_FRAME = bytes([MULAW_SILENCE]) * FRAME_BYTES
MEDIA_FORMAT = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
TURN_GAP_S = 0.5  # the caller waits this long after the service stops talking


class _Outbound:
    """Sequence-numbered messages from 'Twilio' to the server."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, stream_sid: str) -> None:
        self.ws = ws
        self.stream_sid = stream_sid
        self.sequence = 0
        self.sent: list[dict[str, Any]] = []

    async def send(self, event: str, body: dict[str, Any] | None = None) -> None:
        msg: dict[str, Any]
        if event == "connected":
            msg = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
        else:
            self.sequence += 1
            msg = {"event": event, "sequenceNumber": str(self.sequence)}
            if body is not None:
                msg[event] = body
            msg["streamSid"] = self.stream_sid
        await self.ws.send_str(json.dumps(msg))


async def _status(
    call: Call, stream: Stream, base: str | None, stream_sid: str, event: str, error: str = ""
) -> None:
    """The <Stream statusCallback>: stream-started, stream-stopped or stream-error."""
    url = urljoin(base or "", stream.status_callback) if stream.status_callback else None
    if not url:
        return
    params = {
        "AccountSid": call.emu.account_sid,
        "CallSid": call.sid,
        "StreamSid": stream_sid,
        "StreamName": stream.name or stream_sid,
        "StreamEvent": event,
        "Timestamp": call.emu.clock.now().isoformat(),
    }
    if error:
        params["StreamError"] = error
    await call.emu.webhooks.notify(url, "POST", params)


async def _open(
    call: Call, stream: Stream, base: str | None, stream_sid: str
) -> aiohttp.ClientWebSocketResponse | None:
    # Twilio signs the websocket upgrade like a webhook: the wss URL, no parameters.
    headers = {SIGNATURE_HEADER: compute_signature(call.emu.auth_token, stream.url)}
    try:
        return await call.emu.session.ws_connect(
            stream.url,
            headers=headers,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
        )
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        call.record_error(
            entry(31920, call_sid=call.sid, url=stream.url, detail=type(exc).__name__)
        )
        await _status(call, stream, base, stream_sid, "stream-error", "WebSocket handshake error")
        return None


def _start_body(call: Call, stream_sid: str, stream: Stream, tracks: list[str]) -> dict[str, Any]:
    return {
        "accountSid": call.emu.account_sid,
        "streamSid": stream_sid,
        "callSid": call.sid,
        "tracks": tracks,
        "customParameters": dict(stream.parameters),
        "mediaFormat": dict(MEDIA_FORMAT),
    }


class _Session:
    """One bidirectional stream: caller audio out, service audio in, paced together."""

    def __init__(self, call: Call, out: _Outbound, step: Step) -> None:
        self.call = call
        self.out = out
        self.step = step
        self.clock = call.emu.clock
        self.playback: deque[bytes | str] = deque()  # audio frames and mark names
        self.played_ms = 0
        self.speech: deque[bytes] = deque()
        self.chunk = 0
        self.timestamp_ms = 0
        self.turns = 0
        self.heard_since_turn = False
        self.last_activity = self.clock.elapsed()
        self.started = self.clock.elapsed()
        self.inputs_done = False

    async def receive(self) -> str:
        async for msg in self.out.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                data = json.loads(msg.data)
            except ValueError:
                continue
            event = data.get("event") if isinstance(data, dict) else None
            if event == "media":
                payload = data.get("media", {}).get("payload", "")
                try:
                    audio = base64.b64decode(payload)
                except ValueError:
                    continue
                for i in range(0, len(audio), FRAME_BYTES):
                    self.playback.append(audio[i : i + FRAME_BYTES])
            elif event == "mark":
                name = str(data.get("mark", {}).get("name", ""))
                self.playback.append("\0mark:" + name)
            elif event == "clear":
                marks = [x for x in self.playback if isinstance(x, str)]
                self.playback.clear()
                for m in marks:
                    await self.out.send("mark", {"name": m[len("\0mark:") :]})
        return "server-closed"

    def _turn_ready(self) -> bool:
        if self.speech or self.playback:
            return False
        idle = self.clock.elapsed() - self.last_activity
        if self.turns == 0:
            if self.played_ms:
                return idle >= TURN_GAP_S
            return self.clock.elapsed() - self.started >= self.call.script.stream_wait
        if self.heard_since_turn:
            return idle >= TURN_GAP_S
        return idle >= self.call.script.stream_reply_wait

    async def _take_turn(self) -> None:
        item = self.call.next_stream_input()
        if item is None:
            self.inputs_done = True
            return
        self.turns += 1
        self.heard_since_turn = False
        if isinstance(item, Speak):
            self.speech.extend(frames(wav_to_mulaw(item.wav)))
            self.step.input.append(f"say:{item.wav.name}")
        elif isinstance(item, Keys):
            self.step.input.append(f"dtmf:{item.digits}")
            for digit in item.digits:
                await self.out.send("dtmf", {"track": "inbound_track", "digit": digit})
        self.last_activity = self.clock.elapsed()

    async def pace(self) -> str:
        """Every 20 ms: play one frame of the service's audio, send one of the caller's."""
        loop = asyncio.get_running_loop()
        frame_real = self.clock.real(FRAME_MS / 1000)
        next_t = loop.time()
        idle_limit = self.call.script.stream_idle_hangup
        while True:
            if not self.inputs_done and self._turn_ready():
                await self._take_turn()
            if self.playback:
                head = self.playback.popleft()
                if isinstance(head, str):
                    await self.out.send("mark", {"name": head[len("\0mark:") :]})
                    continue
                self.played_ms += FRAME_MS
                self.heard_since_turn = True
                self.last_activity = self.clock.elapsed()
            frame = self.speech.popleft() if self.speech else SILENCE_FRAME
            if self.speech:
                self.last_activity = self.clock.elapsed()
            self.chunk += 1
            await self.out.send(
                "media",
                {
                    "track": "inbound",
                    "chunk": str(self.chunk),
                    "timestamp": str(self.timestamp_ms),
                    "payload": base64.b64encode(frame).decode("ascii"),
                },
            )
            self.timestamp_ms += FRAME_MS
            if (
                self.inputs_done
                and not self.playback
                and self.clock.elapsed() - self.last_activity >= idle_limit
            ):
                return "caller-hangup"
            next_t += frame_real
            delay = next_t - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)
                if delay < -0.5:
                    next_t = loop.time()


async def run_connect(call: Call, stream: Stream, base: str | None, step: Step) -> str:
    """<Connect><Stream>: returns 'server-closed', 'caller-hangup' or 'failed'."""
    stream_sid = call.emu.new_sid("MZ")
    ws = await _open(call, stream, base, stream_sid)
    if ws is None:
        return "failed"
    out = _Outbound(ws, stream_sid)
    session = _Session(call, out, step)
    reason = "stopped"
    tasks: list[asyncio.Task[str]] = []
    try:
        await out.send("connected")
        await out.send("start", _start_body(call, stream_sid, stream, ["inbound"]))
        await _status(call, stream, base, stream_sid, "stream-started")
        loop = asyncio.get_running_loop()
        receiving = loop.create_task(session.receive())
        pacing = loop.create_task(session.pace())
        tasks = [receiving, pacing]
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if receiving in done or pacing.exception() is not None:
            reason = "server-closed"  # the server hung up (sending may have hit its close)
        else:
            reason = pacing.result()
        return reason
    except (aiohttp.ClientError, ConnectionResetError) as exc:
        call.record_error(entry(31921, call_sid=call.sid, url=stream.url, detail=str(exc)))
        reason = "server-closed"
        return reason
    finally:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
            for task in tasks:
                if not task.cancelled():
                    task.exception()  # retrieved: a send racing the server's close
        if reason != "server-closed" and not ws.closed:
            try:
                await out.send("stop", {"accountSid": call.emu.account_sid, "callSid": call.sid})
            except (aiohttp.ClientError, ConnectionResetError):
                pass
        await ws.close()
        call.heard(Heard(kind="stream", url=stream.url, ms=session.played_ms))
        await _status(call, stream, base, stream_sid, "stream-stopped")


def start_fork(call: Call, stream: Stream, base: str | None, step: Step) -> None:
    """<Start><Stream>: stream the caller's audio in the background."""
    stop = asyncio.Event()
    name = stream.name or call.emu.new_sid("MZ")
    call.stop_streams[name] = stop
    task = asyncio.get_running_loop().create_task(_fork(call, stream, base, stop))
    call.background.add(task)
    task.add_done_callback(call.background.discard)


async def _fork(call: Call, stream: Stream, base: str | None, stop: asyncio.Event) -> None:
    stream_sid = call.emu.new_sid("MZ")
    ws = await _open(call, stream, base, stream_sid)
    if ws is None:
        return
    out = _Outbound(ws, stream_sid)
    tracks = {
        "inbound_track": ["inbound"],
        "outbound_track": ["outbound"],
        "both_tracks": ["inbound", "outbound"],
    }.get(stream.track, ["inbound"])
    clock = call.emu.clock
    loop = asyncio.get_running_loop()
    try:
        await out.send("connected")
        await out.send("start", _start_body(call, stream_sid, stream, tracks))
        await _status(call, stream, base, stream_sid, "stream-started")
        chunk = 0
        next_t = loop.time()
        payload = base64.b64encode(SILENCE_FRAME).decode("ascii")
        while not stop.is_set() and not ws.closed:
            chunk += 1
            for track in tracks:
                await out.send(
                    "media",
                    {
                        "track": track,
                        "chunk": str(chunk),
                        "timestamp": str((chunk - 1) * FRAME_MS),
                        "payload": payload,
                    },
                )
            next_t += clock.real(FRAME_MS / 1000)
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, next_t - loop.time()))
            except TimeoutError:
                pass
        if not ws.closed:
            await out.send("stop", {"accountSid": call.emu.account_sid, "callSid": call.sid})
    except (aiohttp.ClientError, ConnectionResetError) as exc:
        call.record_error(entry(31921, call_sid=call.sid, url=stream.url, detail=str(exc)))
    finally:
        await ws.close()
        await _status(call, stream, base, stream_sid, "stream-stopped")
