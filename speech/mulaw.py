"""G.711 mu-law, 16-bit PCM helpers, resampling to 8 kHz and 20 ms framing, in pure Python.

Twilio Media Streams carry 8 kHz mono mu-law, base64-encoded, one 20 ms frame (160 bytes)
per `media` message, and `<Play>` accepts the same audio in a WAV file (format tag 7).

Decoding is table driven and runs at C speed: two 256-byte translation tables give the low
and the high byte of every decoded sample and are interleaved with slice assignment, so a
second of audio costs microseconds. Encoding uses a 64 Ki table indexed by the unsigned
16-bit sample. The standard library's `audioop` is deprecated (and removed in 3.13); it is
not used.

All PCM here is signed 16-bit little-endian ("s16le"), mono.
"""

from __future__ import annotations

import functools
import math
import operator
import struct
import sys
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000  # 160 mu-law bytes = 160 samples
MULAW_SILENCE = 0xFF  # encodes 0

_BIAS = 0x84
_CLIP14 = 8159
_SEGMENT_ENDS = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)

WAVE_FORMAT_PCM = 1
WAVE_FORMAT_MULAW = 7


class WavError(ValueError):
    """A WAV file that this module cannot read (not RIFF/WAVE, unsupported format)."""


def encode_sample(sample: int) -> int:
    """One signed 16-bit sample -> one mu-law byte (G.711 on the top 14 bits).

    The same decision levels as the classic Sun/CCITT reference code (and as the old
    `audioop.lin2ulaw`), so files made here and by sox or other tools agree byte for byte.
    """
    if not -32768 <= sample <= 32767:
        raise ValueError(f"sample {sample} is outside the 16-bit range")
    value = sample >> 2
    mask = 0xFF
    if value < 0:
        value = -value
        mask = 0x7F
    value = min(value, _CLIP14) + (_BIAS >> 2)
    for segment, end in enumerate(_SEGMENT_ENDS):
        if value <= end:
            return ((segment << 4) | ((value >> (segment + 1)) & 0x0F)) ^ mask
    return 0x7F ^ mask


def decode_sample(byte: int) -> int:
    """One mu-law byte -> one signed 16-bit sample."""
    if not 0 <= byte <= 255:
        raise ValueError(f"mu-law byte {byte} is outside 0..255")
    u = ~byte & 0xFF
    exponent = (u >> 4) & 0x07
    magnitude = ((((u & 0x0F) << 3) + _BIAS) << exponent) - _BIAS
    return -magnitude if u & 0x80 else magnitude


DECODE_TABLE: tuple[int, ...] = tuple(decode_sample(b) for b in range(256))
# Index: the sample as an unsigned 16-bit number (sample & 0xFFFF).
_ENCODE_TABLE = bytes(encode_sample(s - 65536 if s >= 32768 else s) for s in range(65536))
_DECODE_LOW = bytes(s & 0xFF for s in DECODE_TABLE)
_DECODE_HIGH = bytes((s >> 8) & 0xFF for s in DECODE_TABLE)
_LITTLE = sys.byteorder == "little"


def ulaw_to_pcm16(data: bytes) -> bytes:
    """mu-law bytes -> s16le PCM (twice as long)."""
    out = bytearray(2 * len(data))
    out[0::2] = data.translate(_DECODE_LOW)
    out[1::2] = data.translate(_DECODE_HIGH)
    return bytes(out)


def pcm16_to_ulaw(pcm: bytes) -> bytes:
    """s16le PCM -> mu-law bytes (half as long). An odd trailing byte is an error."""
    if len(pcm) % 2:
        raise ValueError("16-bit PCM must have an even number of bytes")
    samples = array("H")
    samples.frombytes(pcm)
    if not _LITTLE:  # pragma: no cover - big-endian hosts only
        samples.byteswap()
    return bytes(map(_ENCODE_TABLE.__getitem__, samples))


def pcm16_samples(pcm: bytes) -> array[int]:
    """s16le PCM -> an array of signed ints."""
    if len(pcm) % 2:
        raise ValueError("16-bit PCM must have an even number of bytes")
    samples = array("h")
    samples.frombytes(pcm)
    if not _LITTLE:  # pragma: no cover
        samples.byteswap()
    return samples


def samples_to_pcm16(samples: array[int] | list[int]) -> bytes:
    """Signed ints (clipped to 16 bits) -> s16le PCM."""
    out = array("h", (max(-32768, min(32767, int(s))) for s in samples))
    if not _LITTLE:  # pragma: no cover
        out.byteswap()
    return out.tobytes()


def rms(pcm: bytes) -> float:
    """Root mean square of s16le PCM (0.0 for no samples)."""
    samples = pcm16_samples(pcm)
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples))


def ulaw_rms(data: bytes) -> float:
    """Root mean square of mu-law audio, without building the PCM first."""
    if not data:
        return 0.0
    table = DECODE_TABLE
    return math.sqrt(sum(table[b] * table[b] for b in data) / len(data))


@functools.lru_cache(maxsize=16)
def _polyphase(
    src_rate: int, dst_rate: int, taps: int
) -> tuple[int, int, tuple[tuple[float, ...], ...]]:
    """(up, down, one windowed-sinc kernel per output phase), each normalized to DC gain 1."""
    g = math.gcd(src_rate, dst_rate)
    up, down = dst_rate // g, src_rate // g
    cutoff = 0.45 * min(src_rate, dst_rate) / src_rate  # of the source rate
    half = taps // 2
    kernels = []
    for phase in range(up):
        frac = phase / up
        coeffs = []
        for k in range(-half + 1, half + 1):
            t = k - frac
            ideal = 2 * cutoff if t == 0 else math.sin(2 * math.pi * cutoff * t) / (math.pi * t)
            window = 0.54 + 0.46 * math.cos(math.pi * t / half)
            coeffs.append(ideal * window)
        total = sum(coeffs)
        kernels.append(tuple(c / total for c in coeffs))
    return up, down, tuple(kernels)


def resample(pcm: bytes, src_rate: int, dst_rate: int = SAMPLE_RATE, *, taps: int = 32) -> bytes:
    """Resample s16le mono PCM with a polyphase windowed-sinc filter (band-limited to 0.45 x
    the lower rate, so going down to 8 kHz does not alias).

    Exact rational phases (22050 -> 8000 is 160/441), one short dot product per output
    sample: about 20 ms of CPU per second of audio. Good for rendering prompts to a
    telephone band; not a mastering tool.
    """
    if src_rate <= 0 or dst_rate <= 0:
        raise ValueError("sample rates must be positive")
    if taps < 4 or taps % 2:
        raise ValueError("taps must be an even number >= 4")
    samples = pcm16_samples(pcm)
    if src_rate == dst_rate or not samples:
        return pcm[: len(samples) * 2]
    up, down, kernels = _polyphase(src_rate, dst_rate, taps)
    half = taps // 2
    padded = [0.0] * half + [float(x) for x in samples] + [0.0] * half
    count = len(samples) * up // down
    mul = operator.mul
    out = []
    for i in range(count):
        j, phase = divmod(i * down, up)
        start = j + 1  # padded index of x[j - half + 1]
        out.append(round(sum(map(mul, kernels[phase], padded[start : start + taps]))))
    return samples_to_pcm16(out)


def frames(data: bytes, size: int = FRAME_BYTES, *, pad: int = MULAW_SILENCE) -> Iterator[bytes]:
    """Split mu-law audio into frames of `size` bytes; the last is padded with silence."""
    if size <= 0:
        raise ValueError("frame size must be positive")
    for start in range(0, len(data), size):
        chunk = data[start : start + size]
        if len(chunk) < size:
            chunk = chunk + bytes([pad]) * (size - len(chunk))
        yield chunk


def duration_ms(ulaw: bytes, rate: int = SAMPLE_RATE) -> int:
    return len(ulaw) * 1000 // rate


# --- WAV files ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Audio:
    """Mono s16le PCM and its sample rate."""

    rate: int
    pcm: bytes

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / self.rate


def _downmix(pcm: bytes, channels: int) -> bytes:
    if channels == 1:
        return pcm
    samples = pcm16_samples(pcm)
    mono = [
        sum(samples[i : i + channels]) // channels
        for i in range(0, len(samples) - channels + 1, channels)
    ]
    return samples_to_pcm16(mono)


def _wav_format_and_data(blob: bytes) -> tuple[tuple[int, int, int, int], bytes]:
    """((format tag, channels, rate, bits), data chunk) of RIFF/WAVE bytes."""
    if len(blob) < 12 or blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while pos + 8 <= len(blob):
        chunk_id = blob[pos : pos + 4]
        (size,) = struct.unpack_from("<I", blob, pos + 4)
        body = blob[pos + 8 : pos + 8 + size]
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise WavError("fmt chunk too short")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise WavError("data chunk before fmt chunk")
            if fmt[1] < 1 or fmt[2] < 1:
                raise WavError("bad channel count or sample rate")
            return fmt, body
        pos += 8 + size + (size & 1)
    raise WavError("no data chunk")


def parse_wav(blob: bytes) -> Audio:
    """RIFF/WAVE bytes (PCM 8/16-bit or mu-law, any channel count) -> mono s16le Audio."""
    (tag, channels, rate, bits), body = _wav_format_and_data(blob)
    if tag == WAVE_FORMAT_MULAW and bits == 8:
        pcm = ulaw_to_pcm16(body)
    elif tag == WAVE_FORMAT_PCM and bits == 16:
        pcm = body[: len(body) - len(body) % (2 * channels)]
    elif tag == WAVE_FORMAT_PCM and bits == 8:
        pcm = samples_to_pcm16([(b - 128) << 8 for b in body])
    else:
        raise WavError(f"unsupported WAV format tag {tag} with {bits} bits")
    return Audio(rate=rate, pcm=_downmix(pcm, channels))


def wav_to_ulaw(blob: bytes) -> bytes:
    """8 kHz mono mu-law samples of a WAV: its data as is when it already is that (no
    re-encoding), else decoded, mixed down, resampled and encoded."""
    (tag, channels, rate, bits), body = _wav_format_and_data(blob)
    if (tag, channels, rate, bits) == (WAVE_FORMAT_MULAW, 1, SAMPLE_RATE, 8):
        return body
    audio = parse_wav(blob)
    return pcm16_to_ulaw(resample(audio.pcm, audio.rate, SAMPLE_RATE))


def read_wav(path: Path) -> Audio:
    return parse_wav(path.read_bytes())


def ulaw_wav_bytes(ulaw: bytes, rate: int = SAMPLE_RATE) -> bytes:
    """A mono mu-law WAV (fmt tag 7, with the `fact` chunk non-PCM formats need)."""
    fmt = struct.pack("<HHIIHHH", WAVE_FORMAT_MULAW, 1, rate, rate, 1, 8, 0)
    fact = struct.pack("<I", len(ulaw))
    data = ulaw + (b"\x00" if len(ulaw) & 1 else b"")
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"fact"
        + struct.pack("<I", len(fact))
        + fact
        + b"data"
        + struct.pack("<I", len(ulaw))
        + data
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def read_ulaw_wav(path: Path) -> bytes:
    """The 8 kHz mono mu-law samples of a WAV file (see `wav_to_ulaw`)."""
    return wav_to_ulaw(path.read_bytes())
