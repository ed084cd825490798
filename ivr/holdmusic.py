"""Hold music the service can always serve: a soft chord loop synthesised in-process.

Queues point `hold_music_url` at `/static/hold/{name}.wav`; a bank replaces these with its
licensed music by pointing the URL elsewhere. Each name gets its own key, so callers can
tell queues apart. 8 kHz mono mu-law WAV, as Twilio's <Play> accepts.
"""

from __future__ import annotations

import hashlib
import math
import re
from functools import lru_cache

from aiohttp import web

from speech.mulaw import SAMPLE_RATE, pcm16_to_ulaw, samples_to_pcm16, ulaw_wav_bytes

CLIP_S = 10  # one <Play> of the loop; announcements come every N clips
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_CHORDS = ((0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 4, 7))  # I - IV - V - I
MAX_CACHED = 16


@lru_cache(maxsize=MAX_CACHED)
def clip(name: str) -> bytes:
    root = 196.0 * 2 ** ((hashlib.sha256(name.encode()).digest()[0] % 5) / 12)  # G3 and up
    samples: list[int] = []
    per_chord = CLIP_S * SAMPLE_RATE // len(_CHORDS)
    for chord in _CHORDS:
        freqs = [root * 2 ** (step / 12) for step in chord]
        for i in range(per_chord):
            t = i / SAMPLE_RATE
            envelope = min(1.0, i / 800, (per_chord - i) / 800)
            value = sum(math.sin(2 * math.pi * f * t) for f in freqs) / len(freqs)
            samples.append(int(6000 * envelope * value))
    return ulaw_wav_bytes(pcm16_to_ulaw(samples_to_pcm16(samples)))


async def serve_hold_music(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if not _NAME.match(name):
        raise web.HTTPNotFound()
    return web.Response(
        body=clip(name),
        content_type="audio/wav",
        headers={"Cache-Control": "public, max-age=86400, immutable"},
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/static/hold/{name}.wav", serve_hold_music)]
