"""Care-team tasks created by the IVR (voice messages), appended to a capped stream."""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis

from config.keys import Keys

CARE_STREAM_MAXLEN = 100_000  # approximate cap; the callbacks package consumes tasks long before


async def add_voice_message(
    redis: aioredis.Redis,
    keys: Keys,
    *,
    call_sid: str,
    caller: str,
    lang: str,
    recording_url: str,
    duration_s: int,
    flags: frozenset[str],
) -> str:
    entry: dict[Any, Any] = {
        "kind": "voice_message",
        "call_sid": call_sid,
        "caller": caller,
        "lang": lang,
        "recording_url": recording_url,
        "duration_s": duration_s,
        "flags": ",".join(sorted(flags)),
        "created": int(time.time()),
    }
    entry_id = await redis.xadd(
        keys.care_tasks(),
        entry,
        maxlen=CARE_STREAM_MAXLEN,
        approximate=True,
    )
    return str(entry_id)
