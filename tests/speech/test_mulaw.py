from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from speech import mulaw

# (16-bit sample, G.711 mu-law byte): the CCITT/Sun reference code (and the old audioop
# module, checked against all 65536 inputs when this was written) give these.
ENCODE_TABLE = [
    (0, 0xFF),
    (1, 0xFF),
    (-1, 0x7E),
    (4, 0xFE),
    (-4, 0x7E),
    (100, 0xF2),
    (-100, 0x72),
    (1000, 0xCE),
    (-1000, 0x4E),
    (8000, 0xA0),
    (32767, 0x80),
    (-32768, 0x00),
    (32124, 0x80),
]

DECODE_TABLE = [
    (0xFF, 0),
    (0x7F, 0),
    (0x00, -32124),
    (0x80, 32124),
    (0x0F, -16764),
    (0x8F, 16764),
    (0x70, -120),
    (0xF0, 120),
    (0xFE, 8),
    (0x7E, -8),
]


@pytest.mark.parametrize(("sample", "byte"), ENCODE_TABLE)
def test_encode_sample(sample: int, byte: int) -> None:
    assert mulaw.encode_sample(sample) == byte
    assert mulaw.pcm16_to_ulaw(struct.pack("<h", sample)) == bytes([byte])


@pytest.mark.parametrize(("byte", "sample"), DECODE_TABLE)
def test_decode_sample(byte: int, sample: int) -> None:
    assert mulaw.decode_sample(byte) == sample
    assert mulaw.ulaw_to_pcm16(bytes([byte])) == struct.pack("<h", sample)


def test_every_byte_roundtrips_except_negative_zero() -> None:
    for byte in range(256):
        back = mulaw.encode_sample(mulaw.decode_sample(byte))
        assert back == (0xFF if byte == 0x7F else byte)


@given(st.lists(st.integers(-32768, 32767), max_size=400))
def test_encode_decode_error_is_bounded(samples: list[int]) -> None:
    pcm = struct.pack(f"<{len(samples)}h", *samples)
    back = mulaw.pcm16_samples(mulaw.ulaw_to_pcm16(mulaw.pcm16_to_ulaw(pcm)))
    for original, decoded in zip(samples, back, strict=True):
        # G.711 keeps a relative error of about 1/16 (plus the step near zero)
        assert abs(original - decoded) <= max(16, abs(original) // 15)


@pytest.mark.parametrize(
    ("length", "frames", "last_pad"),
    [(0, 0, 0), (1, 1, 159), (160, 1, 0), (161, 2, 159), (320, 2, 0), (500, 4, 140)],
)
def test_frames_are_20ms_and_padded_with_silence(length: int, frames: int, last_pad: int) -> None:
    data = bytes([0x10]) * length
    out = list(mulaw.frames(data))
    assert len(out) == frames
    assert all(len(f) == mulaw.FRAME_BYTES == 160 for f in out)
    if out:
        assert out[-1].count(mulaw.MULAW_SILENCE) == last_pad
    assert b"".join(out)[:length] == data


def test_odd_pcm_is_rejected() -> None:
    with pytest.raises(ValueError):
        mulaw.pcm16_to_ulaw(b"\x00\x01\x02")
    with pytest.raises(ValueError):
        mulaw.encode_sample(40000)
    with pytest.raises(ValueError):
        mulaw.decode_sample(256)


@pytest.mark.parametrize(
    ("src", "dst"), [(22050, 8000), (16000, 8000), (8000, 8000), (8000, 16000)]
)
def test_resample_length_and_tone(src: int, dst: int) -> None:
    import math

    tone = [round(8000 * math.sin(2 * math.pi * 440 * i / src)) for i in range(src // 10)]
    out = mulaw.pcm16_samples(mulaw.resample(mulaw.samples_to_pcm16(tone), src, dst))
    assert abs(len(out) - dst // 10) <= 1
    # a 440 Hz tone survives with its level (rms of a sine of amplitude A is A/sqrt 2)
    level = mulaw.rms(mulaw.samples_to_pcm16(out[20:-20]))
    assert 8000 / math.sqrt(2) * 0.85 < level < 8000 / math.sqrt(2) * 1.1


def test_resample_removes_what_8khz_cannot_carry() -> None:
    import math

    src = 22050
    tone = [round(8000 * math.sin(2 * math.pi * 6000 * i / src)) for i in range(src // 10)]
    out = mulaw.resample(mulaw.samples_to_pcm16(tone), src, 8000)
    assert mulaw.rms(out) < 800  # a 6 kHz tone would alias to 2 kHz at full level


def test_ulaw_wav_roundtrip(tmp_path: Path) -> None:
    ulaw = bytes(range(256)) * 3
    path = tmp_path / "x.wav"
    path.write_bytes(mulaw.ulaw_wav_bytes(ulaw))
    audio = mulaw.read_wav(path)
    assert audio.rate == 8000
    assert audio.pcm == mulaw.ulaw_to_pcm16(ulaw)
    blob = path.read_bytes()
    assert blob[:4] == b"RIFF" and blob[8:12] == b"WAVE"
    assert struct.unpack_from("<H", blob, 20)[0] == mulaw.WAVE_FORMAT_MULAW


def test_reads_sox_made_fixture() -> None:
    path = Path(__file__).parents[1] / "fixtures" / "audio" / "ko_agent_ko_130.wav"
    audio = mulaw.read_wav(path)
    assert audio.rate == 8000
    assert 0.8 < audio.seconds < 4


@pytest.mark.parametrize(
    "blob", [b"", b"RIFF0000WAVX", b"RIFF\x00\x00\x00\x00WAVEdata\x00\x00\x00\x00"]
)
def test_bad_wav(blob: bytes) -> None:
    with pytest.raises(mulaw.WavError):
        mulaw.parse_wav(blob)


def test_wav_to_ulaw_keeps_mulaw_bytes_and_converts_pcm() -> None:
    ulaw = bytes(range(256))
    assert mulaw.wav_to_ulaw(mulaw.ulaw_wav_bytes(ulaw)) == ulaw  # 0x7F survives as is
    pcm = mulaw.samples_to_pcm16([0, 1000, -1000, 8000] * 4)
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16,
                         1, 1, 16000, 32000, 2, 16, b"data", len(pcm))  # fmt: skip
    out = mulaw.wav_to_ulaw(header + pcm)
    assert len(out) == 8  # 16 kHz -> 8 kHz
