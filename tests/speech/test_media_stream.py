from __future__ import annotations

import base64
import json

import pytest

from speech import media_stream as ms

# Samples shaped as in Twilio's "Media Streams - WebSocket Messages" documentation.
CONNECTED = '{"event": "connected", "protocol": "Call", "version": "1.0.0"}'
START = json.dumps(
    {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
            "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
            "callSid": "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {"node": "main", "lang": "ko"},
        },
        "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    }
)
PAYLOAD = bytes(range(160))
MEDIA = json.dumps(
    {
        "event": "media",
        "sequenceNumber": "3",
        "media": {
            "track": "inbound",
            "chunk": "1",
            "timestamp": "5",
            "payload": base64.b64encode(PAYLOAD).decode(),
        },
        "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    }
)
DTMF = json.dumps(
    {
        "event": "dtmf",
        "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "sequenceNumber": "5",
        "dtmf": {"track": "inbound_track", "digit": "1"},
    }
)
MARK = json.dumps(
    {
        "event": "mark",
        "sequenceNumber": "4",
        "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "mark": {"name": "my label"},
    }
)
STOP = json.dumps(
    {
        "event": "stop",
        "sequenceNumber": "5",
        "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "stop": {
            "accountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
            "callSid": "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        },
    }
)
SID = "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
CALL = "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
ACCOUNT = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (CONNECTED, ms.Connected(protocol="Call", version="1.0.0")),
        (
            START,
            ms.Start(
                sequence_number=1,
                stream_sid=SID,
                call_sid=CALL,
                account_sid=ACCOUNT,
                tracks=("inbound",),
                media_format=ms.MediaFormat("audio/x-mulaw", 8000, 1),
                custom_parameters={"node": "main", "lang": "ko"},
            ),
        ),
        (MEDIA, ms.Media(3, SID, "inbound", 1, 5, PAYLOAD)),
        (DTMF, ms.Dtmf(5, SID, "inbound_track", ms.DtmfDigit.D1)),
        (MARK, ms.Mark(4, SID, "my label")),
        (STOP, ms.Stop(5, SID, CALL, ACCOUNT)),
        ('{"event": "somethingNew", "streamSid": "MZ1"}', None),
    ],
)
def test_parse_documented_messages(raw: str, expected: ms.StreamMessage | None) -> None:
    assert ms.parse_message(raw) == expected


@pytest.mark.parametrize("digit", ["0", "5", "9", "*", "#"])
def test_dtmf_digits(digit: str) -> None:
    raw = json.dumps({"event": "dtmf", "streamSid": "MZ1", "dtmf": {"digit": digit}})
    msg = ms.parse_message(raw)
    assert isinstance(msg, ms.Dtmf) and msg.digit.value == digit


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "not json",
        "[]",
        '"media"',
        "{}",
        '{"event": 5}',
        '{"event": "start"}',
        '{"event": "start", "start": {"streamSid": "MZ1"}}',
        '{"event": "start", "start": {"callSid": "CA1", "streamSid": "MZ1", "tracks": "in"}}',
        '{"event": "media", "streamSid": "MZ1"}',
        '{"event": "media", "streamSid": "MZ1", "media": {"payload": "***"}}',
        '{"event": "media", "streamSid": "MZ1", "media": {"payload": 5}}',
        '{"event": "media", "media": {"payload": ""}}',
        '{"event": "media", "streamSid": "MZ1", "media": {"payload": "", "chunk": "x"}}',
        '{"event": "media", "streamSid": "MZ1", "media": {"payload": "", "chunk": "-1"}}',
        '{"event": "media", "streamSid": "MZ1", "media": {"payload": "", "timestamp": [1]}}',
        '{"event": "dtmf", "streamSid": "MZ1", "dtmf": {"digit": "A"}}',
        '{"event": "dtmf", "streamSid": "MZ1", "dtmf": {"digit": "12"}}',
        '{"event": "dtmf", "streamSid": "MZ1", "dtmf": {}}',
        '{"event": "dtmf", "streamSid": "MZ1"}',
        '{"event": "mark", "streamSid": "MZ1", "mark": {}}',
        '{"event": "stop", "stop": {}}',
        b"\xff\xfe",
    ],
)
def test_malformed_messages_raise_the_specific_error(raw: str | bytes) -> None:
    with pytest.raises(ms.StreamMessageError):
        ms.parse_message(raw)


def test_builders_match_twilio_shapes() -> None:
    assert json.loads(ms.media_message("MZ1", b"\xff\x7f")) == {
        "event": "media",
        "streamSid": "MZ1",
        "media": {"payload": base64.b64encode(b"\xff\x7f").decode()},
    }
    assert json.loads(ms.mark_message("MZ1", "prompt-1")) == {
        "event": "mark",
        "streamSid": "MZ1",
        "mark": {"name": "prompt-1"},
    }
    assert json.loads(ms.clear_message("MZ1")) == {"event": "clear", "streamSid": "MZ1"}
    with pytest.raises(ValueError):
        ms.mark_message("MZ1", "")


def test_prompt_messages_are_20ms_frames_then_a_mark() -> None:
    out = [json.loads(m) for m in ms.prompt_messages("MZ1", bytes(400), mark="p")]
    assert [m["event"] for m in out] == ["media", "media", "media", "mark"]
    sizes = [len(base64.b64decode(m["media"]["payload"])) for m in out[:3]]
    assert sizes == [160, 160, 160]


def test_prompt_messages_are_media_messages_with_a_mark() -> None:
    from speech.media_stream import mark_message, media_message, prompt_messages

    ulaw = bytes(range(256)) * 2 + b"\x01"  # 3 frames + 1 byte, padded with silence
    sid = 'MZ"odd\\sid'
    out = list(prompt_messages(sid, ulaw, mark="p-1"))
    frames = [ulaw[i : i + 160].ljust(160, b"\xff") for i in range(0, len(ulaw), 160)]
    assert out == [media_message(sid, f) for f in frames] + [mark_message(sid, "p-1")]
