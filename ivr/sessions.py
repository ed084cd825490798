"""Call sessions in Redis, keyed by CallSid, moved forward exactly once per Twilio request.

Each TwiML answer carries the step number (`s`) in its action URLs. A request for step
`s` applies only while the session is still at `s`; a retry of it (Twilio resends on a
timeout) or a duplicate gets the answer stored for `s + 1` instead of a second effect.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

import redis.asyncio as aioredis

from config.keys import Keys
from ivr.engine import Session

KEEP_ANSWERS = 20  # past answers kept per call for retries; older steps are never retried


@dataclass(frozen=True)
class Stored:
    session: Session
    seq: int


class SessionStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys, ttl_s: int) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl = ttl_s
        script = resources.files("ivr").joinpath("advance.lua").read_text(encoding="utf-8")
        self._advance = redis.register_script(script)

    async def load(self, call_sid: str) -> Stored | None:
        raw = await self._redis.hgetall(self._keys.call_session(call_sid))
        if not raw or "data" not in raw:
            return None
        session = Session.from_json(json.loads(raw["data"]))
        return Stored(session=session, seq=int(raw.get("seq", session.seq)))

    async def answer_for(self, call_sid: str, seq: int) -> str | None:
        answer = await self._redis.hget(self._keys.call_responses(call_sid), str(seq))
        return str(answer) if answer is not None else None

    async def advance(
        self, expected_seq: int, session: Session, answer: str
    ) -> tuple[bool, str | None]:
        """Store `session` (at session.seq) and its answer if the call is still at `expected_seq`.

        Returns (True, None) when applied, else (False, the answer another request stored).
        """
        sid = session.call_sid
        result = await self._advance(
            keys=[self._keys.call_session(sid), self._keys.call_responses(sid)],
            args=[
                expected_seq,
                session.seq,
                json.dumps(session.to_json(), ensure_ascii=False),
                answer,
                self._ttl,
                KEEP_ANSWERS,
            ],
        )
        if int(result[0]) == 1:
            return True, None
        cached = result[1] if len(result) > 1 else None
        return False, str(cached) if cached else None
