"""Erasure of one customer's data on request: DELETE /api/v1/customers/{phone}.

What is removed or anonymised for the number (E.164), and what is kept and why
(docs/OPERATIONS.md has the same list for operators):
- jobs (callbacks/store.py: callbacks, surveys, follow-ups): waiting jobs cancelled; every
  finished job of the number deleted with its history and attempts. A job dialling right
  now is left alone and counted in `jobs_in_flight`: ask again when the call has ended.
- survey answers (callbacks/surveys_store.py): anonymised; the phone, the recorded
  comment's URL and its transcript removed; the scores stay in the statistics.
- care cases (callbacks/cases.py): anonymised; phone and note removed; the case stays
  in the complaint figures.
- the abandoned-caller list and the ended-call records (queueing; capped, 1 h): the
  number's entries removed.
- voice messages for the care team (ivr/care.py): the number's entries removed (the
  recording itself is stored by the carrier: delete it there).
- KEPT: the do-not-call entry. It is the customer's own instruction not to be called;
  erasing it would make the bank call them again.
- NOT SEARCHABLE, EXPIRE BY THEMSELVES: call sessions and their stored step answers
  (HOTLINE_SESSION_TTL, 4 h by default), PIN-failure counters (1 h, keyed by an account
  reference). Statistics and daily counters hold no number.

Each item is found by walking the index of its kind (jobs, surveys and cases are kept at
most 400 days; the lists are capped), so an erasure costs O(records kept), which is fine
for a request made by hand. Every step is idempotent: a repeated request finds nothing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

import redis.asyncio as aioredis
from aiohttp import web

from callbacks.appkeys import CALLBACKS
from callbacks.jobs import TERMINAL, JobState
from callbacks.phone import InvalidPhone, parse_e164
from callbacks.store import CallbackStore
from config.apiauth import json_error
from config.logs import mask_phone
from queueing.supervisor_auth import authenticate

log = logging.getLogger("hotline.callbacks.erasure")

CHUNK = 500


@dataclass(frozen=True)
class ErasureReport:
    jobs_cancelled: int = 0
    jobs_deleted: int = 0
    jobs_in_flight: int = 0
    surveys_anonymised: int = 0
    cases_anonymised: int = 0
    abandoned_removed: int = 0
    ended_calls_removed: int = 0
    voice_messages_removed: int = 0
    dnc_kept: bool = False


async def _members(redis: aioredis.Redis, key: str) -> list[str]:
    out: list[str] = []
    start = 0
    while True:
        chunk = await redis.zrange(key, start, start + CHUNK - 1)
        out += [str(m) for m in chunk]
        if len(chunk) < CHUNK:
            return out
        start += CHUNK


async def erase_customer(store: CallbackStore, phone: str, *, group: str = "main") -> ErasureReport:
    """Remove or anonymise what Redis holds about `phone` (see the module docstring)."""
    redis, keys = store.redis, store.keys
    counts = dict.fromkeys(
        (
            "jobs_cancelled",
            "jobs_deleted",
            "jobs_in_flight",
            "surveys_anonymised",
            "cases_anonymised",
            "abandoned_removed",
            "ended_calls_removed",
            "voice_messages_removed",
        ),
        0,
    )
    for job_id in await _members(redis, keys.cb_index()):
        job_key = keys.cb_job(job_id)
        if await redis.hget(job_key, "phone") != phone:
            continue
        state = JobState(str(await redis.hget(job_key, "state") or "cancelled"))
        if state not in TERMINAL:
            result = await store.cancel(job_id, "erased on the customer's request")
            if result.status.value != "ok":
                counts["jobs_in_flight"] += 1
                continue
            counts["jobs_cancelled"] += 1
        async with redis.pipeline(transaction=True) as pipe:
            # not pipe.unlink(): on Redis Cluster that is a coroutine that queues nothing
            pipe.execute_command(
                "UNLINK", job_key, keys.cb_history(job_id), keys.cb_attempts(job_id)
            )
            pipe.zrem(keys.cb_index(), job_id)
            await pipe.execute()
        counts["jobs_deleted"] += 1

    for sid in await _members(redis, keys.cb_survey_index()):
        key = keys.cb_survey(sid)
        if await redis.hget(key, "phone") == phone:
            await redis.hdel(key, "phone", "comment_url", "comment_text")
            counts["surveys_anonymised"] += 1

    for case_id in await _members(redis, keys.cb_cases_index()):
        key = keys.cb_case(case_id)
        if await redis.hget(key, "phone") == phone:
            async with redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, "phone", "")
                pipe.hdel(key, "note")
                await pipe.execute()
            counts["cases_anonymised"] += 1

    abandoned = keys.route_abandoned(group)
    for raw in await redis.lrange(abandoned, 0, -1):
        if _caller(str(raw)) == phone:
            counts["abandoned_removed"] += int(await redis.lrem(abandoned, 0, str(raw)))

    done = keys.route_done(group)
    async for sid, raw in redis.hscan_iter(done, count=CHUNK):
        if _caller(str(raw)) == phone:
            async with redis.pipeline(transaction=True) as pipe:
                pipe.hdel(done, sid)
                pipe.zrem(keys.route_done_index(group), sid)
                await pipe.execute()
            counts["ended_calls_removed"] += 1

    stream = keys.care_tasks()
    last = "-"
    while True:
        entries = await redis.xrange(stream, min=last, max="+", count=CHUNK) or []
        for entry_id, fields in entries:
            if fields and fields.get("caller") == phone and entry_id is not None:
                counts["voice_messages_removed"] += int(await redis.xdel(stream, entry_id))
        if len(entries) < CHUNK:
            break
        last = "(" + str(entries[-1][0])

    dnc = bool(await redis.sismember(keys.cb_dnc(), phone))
    return ErasureReport(**counts, dnc_kept=dnc)


def _caller(raw: str) -> str | None:
    try:
        entry = json.loads(raw)
    except ValueError:
        return None
    info = entry.get("info") if isinstance(entry, dict) else None
    caller = info.get("caller") if isinstance(info, dict) else None
    return str(caller) if caller else None


async def erase_handler(request: web.Request) -> web.Response:
    """DELETE /api/v1/customers/{phone}: role supervisor (bearer token, or a signed-in
    supervisor with the CSRF token). 200 with what was done, also when nothing was found;
    422 naming the field for a malformed number."""
    principal = await authenticate(request, "supervisor")
    if principal.role != "supervisor":
        return json_error(403, "only a supervisor may erase a customer's data")
    try:
        phone = parse_e164(request.match_info["phone"])
    except InvalidPhone:
        return json_error(422, "validation failed", fields={"phone": "invalid E.164 number"})
    report = await erase_customer(request.app[CALLBACKS].store, phone)
    log.info(
        "customer data erased on request",
        extra={"phone": mask_phone(phone), "by": principal.token_id, **asdict(report)},
    )
    return web.json_response({"phone": mask_phone(phone), **asdict(report)})
