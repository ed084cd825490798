"""The C-speed front-end and onset detector against the per-sample reference they replaced."""

from __future__ import annotations

import math
import operator
import random
from array import array

from hypothesis import given, settings
from hypothesis import strategies as st

from speech.frontend import SpeechDetector, TelephoneFrontEnd, frame_energy
from speech.mulaw import DECODE_TABLE, pcm16_samples, ulaw_rms, ulaw_to_pcm16


class ReferenceFrontEnd:
    """The front-end as it was (per-sample `map(operator.add)`), kept as the oracle."""

    def __init__(self, noise_std: float = 150.0, table_size: int = 16000, seed: int = 8000):
        rnd = random.Random(seed)
        limit = int(4 * noise_std)
        self._noise = array(
            "h",
            (max(-limit, min(limit, round(rnd.gauss(0.0, noise_std)))) for _ in range(table_size))
            if noise_std
            else bytes(2 * table_size),
        )
        self._pos = 0
        self._prev_half = 0

    def _noise_slice(self, count: int) -> array[int]:
        out = array("h")
        while len(out) < count:
            take = min(count - len(out), len(self._noise) - self._pos)
            out.extend(self._noise[self._pos : self._pos + take])
            self._pos = (self._pos + take) % len(self._noise)
        return out

    def process(self, ulaw: bytes) -> bytes:
        n = len(ulaw)
        if not n:
            return b""
        samples = pcm16_samples(ulaw_to_pcm16(ulaw))
        halves = array("h", (DECODE_TABLE[b] >> 1 for b in ulaw))
        before = array("h", [self._prev_half])
        before.extend(halves[:-1])
        self._prev_half = halves[-1]
        noise = self._noise_slice(2 * n)
        out = array("h", bytes(4 * n))
        out[0::2] = array("h", map(operator.add, map(operator.add, before, halves), noise[0::2]))
        out[1::2] = array("h", map(operator.add, samples, noise[1::2]))
        return out.tobytes()


@settings(max_examples=60, deadline=None)
@given(
    chunks=st.lists(st.binary(min_size=0, max_size=1700), min_size=1, max_size=8),
    noise=st.sampled_from([0.0, 100.0, 150.0, 160.0]),
)
def test_front_end_is_bit_identical_to_the_reference(chunks: list[bytes], noise: float) -> None:
    # a small table so that chunks wrap around it; stateful across chunks
    fast, ref = TelephoneFrontEnd(noise, table_size=997), ReferenceFrontEnd(noise, 997)
    for chunk in chunks:
        out = fast.process(chunk)
        assert out == ref.process(chunk)
        assert len(out) == 4 * len(chunk)


def test_front_end_extremes_do_not_wrap_around() -> None:
    loud = bytes([0x00, 0x80]) * 800  # +-32124, the largest mu-law magnitudes
    fast, ref = TelephoneFrontEnd(150.0), ReferenceFrontEnd(150.0)
    assert fast.process(loud) == ref.process(loud)
    # above 4 x 160 the noise is clipped at 643 so that sums still fit 16 bits
    out = pcm16_samples(TelephoneFrontEnd(1000.0).process(loud))
    assert max(out) <= 32767 and min(out) >= -32768
    assert max(abs(s) for s in out) > 32124  # noise was added, not wrapped around


@given(st.binary(min_size=0, max_size=400))
def test_frame_energy_is_the_rms(frame: bytes) -> None:
    assert math.isclose(frame_energy(frame), ulaw_rms(frame), rel_tol=1e-12)


def test_detector_needs_three_loud_frames_over_the_noise_floor() -> None:
    det = SpeechDetector()
    quiet, loud = bytes([0xFF]) * 160, bytes([0x20, 0xA0]) * 80
    assert not any(det.update(quiet) for _ in range(10))
    assert [det.update(loud) for _ in range(4)] == [False, False, True, False]
    assert det.started
