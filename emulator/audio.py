"""A small pure-Python audio toolkit: G.711 mu-law, WAV in and out, resampling.

No `audioop` (deprecated, removed in 3.13). Enough for Media Streams (8 kHz mono mu-law,
20 ms frames of 160 bytes), for generating recordings and for checking that a <Play>
URL returns audio Twilio can play.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from collections.abc import Iterator
from pathlib import Path

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000  # 160 mu-law bytes per 20 ms frame

_BIAS = 0x84
_CLIP = 32635
MULAW_SILENCE = 0xFF


def _encode_sample(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sample < 0 else sample, _CLIP) + _BIAS
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not magnitude & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _decode_byte(byte: int) -> int:
    byte = ~byte & 0xFF
    sign = byte & 0x80
    exponent = (byte >> 4) & 0x07
    mantissa = byte & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return -magnitude if sign else magnitude


_DECODE = [_decode_byte(b) for b in range(256)]
_ENCODE = bytes(_encode_sample(s - 32768) for s in range(65536))


def mulaw_encode(samples: list[int]) -> bytes:
    """16-bit signed PCM samples -> mu-law bytes."""
    table = _ENCODE
    return bytes(table[max(-32768, min(32767, s)) + 32768] for s in samples)


def mulaw_decode(data: bytes) -> list[int]:
    """mu-law bytes -> 16-bit signed PCM samples."""
    table = _DECODE
    return [table[b] for b in data]


def resample(samples: list[int], rate_in: int, rate_out: int = SAMPLE_RATE) -> list[int]:
    """Linear-interpolation resampling (speech quality is enough for recognition tests)."""
    if rate_in == rate_out or not samples:
        return list(samples)
    n_out = max(1, int(len(samples) * rate_out / rate_in))
    step = rate_in / rate_out
    last = len(samples) - 1
    out: list[int] = []
    for i in range(n_out):
        pos = i * step
        j = int(pos)
        if j >= last:
            out.append(samples[last])
            continue
        frac = pos - j
        out.append(int(samples[j] + (samples[j + 1] - samples[j]) * frac))
    return out


def _pcm16_from_frames(raw: bytes, width: int, channels: int) -> list[int]:
    if width == 2:
        values = list(struct.unpack(f"<{len(raw) // 2}h", raw[: len(raw) // 2 * 2]))
    elif width == 1:
        values = [(b - 128) << 8 for b in raw]
    elif width == 3:
        values = [
            int.from_bytes(raw[i : i + 3], "little", signed=True) >> 8
            for i in range(0, len(raw) - 2, 3)
        ]
    elif width == 4:
        values = [v >> 16 for v in struct.unpack(f"<{len(raw) // 4}i", raw[: len(raw) // 4 * 4])]
    else:
        raise ValueError(f"unsupported sample width {width}")
    if channels == 1:
        return values
    return [
        sum(values[i : i + channels]) // channels
        for i in range(0, len(values) - channels + 1, channels)
    ]


def read_wav_pcm8k(source: str | Path | bytes) -> list[int]:
    """Read a WAV (PCM 8/16/24/32-bit or G.711 mu-law, any rate, any channels) as
    8 kHz mono 16-bit samples."""
    data = Path(source).read_bytes() if isinstance(source, str | Path) else source
    fmt_tag, channels, rate = _wav_format(data)
    if fmt_tag == 7:  # WAVE_FORMAT_MULAW: the wave module refuses it
        body = _wav_chunk(data, b"data")
        samples = mulaw_decode(body)
        if channels > 1:
            samples = [
                sum(samples[i : i + channels]) // channels
                for i in range(0, len(samples) - channels + 1, channels)
            ]
        return resample(samples, rate)
    with wave.open(io.BytesIO(data), "rb") as wav:
        raw = wav.readframes(wav.getnframes())
        pcm = _pcm16_from_frames(raw, wav.getsampwidth(), wav.getnchannels())
        return resample(pcm, wav.getframerate())


def wav_to_mulaw(source: str | Path | bytes) -> bytes:
    """A WAV file as 8 kHz mono mu-law bytes, ready to cut into Media Streams frames."""
    return mulaw_encode(read_wav_pcm8k(source))


def frames(mulaw: bytes, frame_bytes: int = FRAME_BYTES) -> Iterator[bytes]:
    """Cut mu-law audio into 20 ms frames, padding the last one with silence."""
    for start in range(0, len(mulaw), frame_bytes):
        chunk = mulaw[start : start + frame_bytes]
        yield chunk + bytes([MULAW_SILENCE]) * (frame_bytes - len(chunk))


def _wav_chunk(data: bytes, name: bytes) -> bytes:
    pos = 12
    while pos + 8 <= len(data):
        cid = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if cid == name:
            return data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
    raise ValueError(f"WAV has no {name.decode()} chunk")


def _wav_format(data: bytes) -> tuple[int, int, int]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    fmt = _wav_chunk(data, b"fmt ")
    tag, channels, rate = struct.unpack("<HHI", fmt[:8])
    return int(tag), int(channels), int(rate)


def wav_duration_s(data: bytes) -> float:
    """Length in seconds of a RIFF/WAVE file (any format with a byte rate)."""
    fmt = _wav_chunk(data, b"fmt ")
    byte_rate = int(struct.unpack("<I", fmt[8:12])[0])
    return len(_wav_chunk(data, b"data")) / byte_rate if byte_rate else 0.0


def make_wav(seconds: float, *, tone_hz: float = 0.0, rate: int = SAMPLE_RATE) -> bytes:
    """A 16-bit mono PCM WAV of `seconds`: silence, or a quiet tone (a stand-in voice)."""
    n = max(0, int(seconds * rate))
    if tone_hz:
        samples = [int(6000 * math.sin(2 * math.pi * tone_hz * i / rate)) for i in range(n)]
    else:
        samples = [0] * n
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(struct.pack(f"<{n}h", *samples))
    return buf.getvalue()


AUDIO_CONTENT_TYPES = frozenset(
    {
        "audio/mpeg",
        "audio/mp3",
        "audio/wav",
        "audio/wave",
        "audio/x-wav",
        "audio/aiff",
        "audio/x-aifc",
        "audio/x-aiff",
        "audio/x-gsm",
        "audio/gsm",
        "audio/ulaw",
        "audio/basic",
    }
)


def playable_duration_s(content_type: str, body: bytes) -> float | None:
    """Seconds of audio if Twilio could play this response, else None.

    Twilio plays WAV, MP3, AIFF, GSM and mu-law; it goes by the Content-Type, and the
    emulator also sniffs a RIFF/WAVE or MP3 header when the type is generic."""
    ctype = content_type.split(";")[0].strip().lower()
    is_wav = body[:4] == b"RIFF" and body[8:12] == b"WAVE"
    is_mp3 = body[:3] == b"ID3" or (len(body) > 1 and body[0] == 0xFF and body[1] & 0xE0 == 0xE0)
    if ctype not in AUDIO_CONTENT_TYPES and not (
        ctype in {"", "application/octet-stream"} and (is_wav or is_mp3)
    ):
        return None
    if is_wav:
        try:
            return wav_duration_s(body)
        except (ValueError, struct.error):
            return None
    if ctype in {"audio/ulaw", "audio/basic"}:
        return len(body) / SAMPLE_RATE
    return len(body) / 16000  # MP3 at 128 kbit/s
