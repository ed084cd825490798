"""Twilio Media Streams messages, parsed at the edge into frozen dataclasses.

`parse_message(text)` turns one websocket text message from Twilio into `Connected`,
`Start`, `Media`, `Dtmf`, `Mark` or `Stop`; an event this module does not know returns
None (ignored); anything malformed raises `StreamMessageError` (the handler logs it and
carries on). The builders make what a bidirectional stream may send back: `media`, `mark`
and `clear`, as Twilio documents them.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from speech.mulaw import FRAME_BYTES, frames


class StreamMessageError(ValueError):
    """A Media Streams message that is not valid JSON or lacks a required field."""


class DtmfDigit(str, enum.Enum):
    D0 = "0"
    D1 = "1"
    D2 = "2"
    D3 = "3"
    D4 = "4"
    D5 = "5"
    D6 = "6"
    D7 = "7"
    D8 = "8"
    D9 = "9"
    STAR = "*"
    HASH = "#"


@dataclass(frozen=True)
class MediaFormat:
    encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000
    channels: int = 1


@dataclass(frozen=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True)
class Start:
    sequence_number: int
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    media_format: MediaFormat
    custom_parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Media:
    sequence_number: int
    stream_sid: str
    track: str
    chunk: int
    timestamp: int  # ms since the stream started
    payload: bytes  # mu-law bytes, base64-decoded


@dataclass(frozen=True)
class Dtmf:
    sequence_number: int
    stream_sid: str
    track: str
    digit: DtmfDigit


@dataclass(frozen=True)
class Mark:
    sequence_number: int
    stream_sid: str
    name: str


@dataclass(frozen=True)
class Stop:
    sequence_number: int
    stream_sid: str
    call_sid: str
    account_sid: str


StreamMessage = Connected | Start | Media | Dtmf | Mark | Stop


def _obj(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise StreamMessageError(f"{key!r} must be an object")
    return value


def _str(data: Mapping[str, Any], key: str, *, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or (default is None and not value):
        raise StreamMessageError(f"{key!r} must be a non-empty string")
    return value


def _int(data: Mapping[str, Any], key: str, *, default: int | None = None) -> int:
    value = data.get(key)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise StreamMessageError(f"{key!r} must be an integer, got {value!r}")
    try:
        number = int(value)  # Twilio sends numbers as strings ("1")
    except (TypeError, ValueError):
        raise StreamMessageError(f"{key!r} must be an integer, got {value!r}") from None
    if number < 0:
        raise StreamMessageError(f"{key!r} must not be negative")
    return number


def parse_message(text: str | bytes) -> StreamMessage | None:
    """One websocket message from Twilio; None for an event we do not handle."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StreamMessageError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise StreamMessageError("message must be a JSON object")
    event = data.get("event")
    if not isinstance(event, str):
        raise StreamMessageError("'event' must be a string")
    if event == "connected":
        return Connected(
            protocol=_str(data, "protocol", default="Call"),
            version=_str(data, "version", default=""),
        )
    if event == "start":
        start = _obj(data, "start")
        fmt = start.get("mediaFormat") or {}
        if not isinstance(fmt, dict):
            raise StreamMessageError("'mediaFormat' must be an object")
        params = start.get("customParameters") or {}
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            raise StreamMessageError("'customParameters' must be an object")
        tracks = start.get("tracks") or ["inbound"]
        if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
            raise StreamMessageError("'tracks' must be a list of strings")
        return Start(
            sequence_number=_int(data, "sequenceNumber", default=0),
            stream_sid=_str(start, "streamSid", default=data.get("streamSid") or None),
            call_sid=_str(start, "callSid"),
            account_sid=_str(start, "accountSid", default=""),
            tracks=tuple(tracks),
            media_format=MediaFormat(
                encoding=_str(fmt, "encoding", default="audio/x-mulaw"),
                sample_rate=_int(fmt, "sampleRate", default=8000),
                channels=_int(fmt, "channels", default=1),
            ),
            custom_parameters={k: str(v) for k, v in params.items()},
        )
    if event == "media":
        media = _obj(data, "media")
        raw = media.get("payload")
        if not isinstance(raw, str):
            raise StreamMessageError("'payload' must be a base64 string")
        try:
            payload = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise StreamMessageError("'payload' is not valid base64") from None
        return Media(
            sequence_number=_int(data, "sequenceNumber", default=0),
            stream_sid=_str(data, "streamSid"),
            track=_str(media, "track", default="inbound"),
            chunk=_int(media, "chunk", default=0),
            timestamp=_int(media, "timestamp", default=0),
            payload=payload,
        )
    if event == "dtmf":
        dtmf = _obj(data, "dtmf")
        try:
            digit = DtmfDigit(dtmf.get("digit"))
        except ValueError:
            raise StreamMessageError(f"bad DTMF digit {dtmf.get('digit')!r}") from None
        return Dtmf(
            sequence_number=_int(data, "sequenceNumber", default=0),
            stream_sid=_str(data, "streamSid"),
            track=_str(dtmf, "track", default="inbound_track"),
            digit=digit,
        )
    if event == "mark":
        mark = _obj(data, "mark")
        return Mark(
            sequence_number=_int(data, "sequenceNumber", default=0),
            stream_sid=_str(data, "streamSid"),
            name=_str(mark, "name"),
        )
    if event == "stop":
        stop = data.get("stop") or {}
        if not isinstance(stop, dict):
            raise StreamMessageError("'stop' must be an object")
        return Stop(
            sequence_number=_int(data, "sequenceNumber", default=0),
            stream_sid=_str(data, "streamSid"),
            call_sid=_str(stop, "callSid", default=""),
            account_sid=_str(stop, "accountSid", default=""),
        )
    return None


# --- messages to Twilio ---------------------------------------------------------------------


def media_message(stream_sid: str, payload: bytes) -> str:
    """Audio to play to the caller: 8 kHz mono mu-law bytes (no WAV header)."""
    body = {
        "event": "media",
        "streamSid": stream_sid,
        "media": {"payload": base64.b64encode(payload).decode("ascii")},
    }
    return json.dumps(body, separators=(",", ":"))


def mark_message(stream_sid: str, name: str) -> str:
    """Twilio echoes a mark back once the audio sent before it has played (or is cleared)."""
    if not name:
        raise ValueError("mark name must not be empty")
    body = {"event": "mark", "streamSid": stream_sid, "mark": {"name": name}}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def clear_message(stream_sid: str) -> str:
    """Drop the audio buffered for playback (barge-in); pending marks come back."""
    return json.dumps({"event": "clear", "streamSid": stream_sid}, separators=(",", ":"))


def prompt_messages(
    stream_sid: str, ulaw: bytes, *, mark: str | None = None, frame_bytes: int = FRAME_BYTES
) -> Iterator[str]:
    """A rendered prompt as 20 ms `media` messages, then an optional `mark`. The same text
    as `media_message`, with the JSON around the payload built once per prompt."""
    head = '{"event":"media","streamSid":' + json.dumps(stream_sid) + ',"media":{"payload":"'
    b64 = base64.b64encode
    for frame in frames(ulaw, frame_bytes):
        yield head + b64(frame).decode("ascii") + '"}}'
    if mark:
        yield mark_message(stream_sid, mark)
