"""Call sessions in Redis, keyed by CallSid, moved forward exactly once per Twilio request.

Each TwiML answer carries the step number (`s`) in its action URLs. A request for step
`s` applies only while the session is still at `s`; a retry of it (Twilio resends on a
timeout) or a duplicate gets the answer stored for `s + 1` instead of a second effect.

A new call (`/voice`) whose first step needs no I/O is stored with `advance(-1, ...)`
alone: the script refuses it when the session exists (a repeated /voice) and returns the
answer stored for step 0, so one round trip both detects the repeat and stores the call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from config.keys import Keys
from ivr.engine import Session
from ivr.redis_direct import DirectCommands
from ivr.redis_pipe import PipelinedRedis

KEEP_ANSWERS = 20  # past answers kept per call for retries; older steps are never retried
NEW_CALL = -1  # advance()'s expected seq for a call that must not have a session yet


@dataclass(frozen=True)
class Stored:
    session: Session
    seq: int


def _as_dict(raw: Any) -> dict[str, str]:
    """HGETALL's reply: a flat list (RESP2, direct), or a dict (redis-py's callback, RESP3)."""
    if isinstance(raw, dict):
        return raw
    it = iter(raw or ())
    return dict(zip(it, it, strict=True))


class SessionStore:
    def __init__(self, redis: aioredis.Redis | RedisCluster, keys: Keys, ttl_s: int) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl = ttl_s
        self._script = resources.files("ivr").joinpath("advance.lua").read_text(encoding="utf-8")
        self._advance = redis.register_script(self._script)
        # the hot path's two commands: one pipelined connection per process when the URL
        # allows (ivr/redis_pipe.py), else redis-py's connections (cluster, sentinel, TLS)
        self._pipe = PipelinedRedis.for_client(redis)
        direct = DirectCommands(redis)
        self._commands: PipelinedRedis | DirectCommands = self._pipe or direct
        self._direct = self._pipe is not None or direct.direct

    @property
    def pipelined(self) -> bool:
        """True when the hot path's commands share the pipelined connection."""
        return self._pipe is not None

    async def aclose(self) -> None:
        """Close the pipelined connection, if one was opened (the redis-py client is the
        caller's to close)."""
        if self._pipe is not None:
            await self._pipe.aclose()

    async def load(self, call_sid: str) -> Stored | None:
        key = self._keys.call_session(call_sid)
        if self._direct:
            raw = _as_dict(await self._commands.execute("HGETALL", key))
        else:
            raw = _as_dict(await self._redis.hgetall(key))
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
        """Store `session` (at session.seq) and its answer if the call is still at `expected_seq`
        (NEW_CALL: if it has no session yet).

        Returns (True, None) when applied, else (False, the answer stored for session.seq).
        """
        sid = session.call_sid
        keys = [self._keys.call_session(sid), self._keys.call_responses(sid)]
        args: list[str | int] = [
            expected_seq,
            session.seq,
            json.dumps(session.to_json(), ensure_ascii=False),
            answer,
            self._ttl,
            KEEP_ANSWERS,
        ]
        if self._direct:
            sha = self._advance.sha
            result = await self._commands.evalsha(sha, self._script, keys, args)
        else:
            result = await self._advance(keys=keys, args=args)
        if int(result[0]) == 1:
            return True, None
        cached = result[1] if len(result) > 1 else None
        return False, str(cached) if cached else None
