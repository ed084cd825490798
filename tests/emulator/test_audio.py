"""The pure-Python codec: G.711 mu-law, WAV reading, resampling, sniffing."""

from __future__ import annotations

import io
import math
import struct
import wave
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator import audio


def test_mulaw_known_values() -> None:
    # G.711: silence is 0xFF, full-scale negative 0x00, full-scale positive 0x80.
    assert audio.mulaw_encode([0]) == b"\xff"
    assert audio.mulaw_encode([32767]) == b"\x80"
    assert audio.mulaw_encode([-32768]) == b"\x00"
    assert audio.mulaw_decode(b"\xff") == [0]
    assert audio.mulaw_decode(b"\x80") == [32124]


@given(st.integers(-32768, 32767))
def test_mulaw_round_trip_error_is_bounded(sample: int) -> None:
    back = audio.mulaw_decode(audio.mulaw_encode([sample]))[0]
    assert abs(back - sample) <= max(16, abs(sample) // 16)


@given(st.binary(min_size=1, max_size=64))
def test_decode_encode_is_identity_on_codes(data: bytes) -> None:
    # 0x7F and 0xFF both mean zero; otherwise every code survives a round trip.
    again = audio.mulaw_encode(audio.mulaw_decode(data))
    assert [b if b != 0x7F else 0xFF for b in data] == list(again)


def _wav(rate: int, channels: int, seconds: float, width: int = 2) -> bytes:
    n = int(rate * seconds)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        samples = [int(8000 * math.sin(2 * math.pi * 300 * i / rate)) for i in range(n)]
        frames = b"".join(struct.pack("<h", s) * channels for s in samples)
        w.writeframes(frames)
    return buf.getvalue()


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (16000, 1), (44100, 2), (22050, 1)])
def test_wav_is_resampled_to_8k_mono(rate: int, channels: int) -> None:
    pcm = audio.read_wav_pcm8k(_wav(rate, channels, 0.5))
    assert abs(len(pcm) - 4000) <= 2
    mulaw = audio.wav_to_mulaw(_wav(rate, channels, 0.5))
    chunks = list(audio.frames(mulaw))
    assert all(len(c) == 160 for c in chunks) and len(chunks) == 25


def test_reads_a_mulaw_wav(tmp_path: Path) -> None:
    body = audio.mulaw_encode([0, 1000, -1000] * 800)
    fmt = struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8)
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    riff += b"data" + struct.pack("<I", len(body)) + body
    path = tmp_path / "u.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)
    assert len(audio.read_wav_pcm8k(path)) == 2400
    assert audio.wav_duration_s(path.read_bytes()) == pytest.approx(0.3)


def test_playable_sniffing() -> None:
    wav = audio.make_wav(1.5)
    assert audio.playable_duration_s("audio/x-wav", wav) == pytest.approx(1.5)
    assert audio.playable_duration_s("application/octet-stream", wav) == pytest.approx(1.5)
    assert audio.playable_duration_s("audio/mpeg", b"ID3" + b"\0" * 15997) == pytest.approx(1.0)
    assert audio.playable_duration_s("text/html", b"<html>") is None
    assert audio.playable_duration_s("application/octet-stream", b"junk") is None
