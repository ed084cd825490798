"""A customer's data erased on request: DELETE /api/v1/customers/{phone} (supervisor).

After it, no key or value under the test's prefix holds the number, except the
do-not-call entry (kept on purpose: it is the customer's instruction), and another
customer's data is untouched. Callers without the supervisor role are refused."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from callbacks.appkeys import CALLBACKS
from callbacks.cases import CaseKind
from callbacks.jobs import JobKind, NewJob
from callbacks.surveys_store import SurveyAnswer
from config.keys import Keys
from ivr.appkeys import ROUTER
from ivr.care import add_voice_message
from tests.security.conftest import FullService
from tests.twilio_signing import call_sid

ERASED = "+8613900112233"
OTHER = "+8613900445566"
TOKENS = {"sup-token-1": "supervisor", "care-token-1": "care", "view-token-1": "viewer"}


async def values_with(redis: aioredis.Redis, prefix: str, needle: str) -> list[str]:
    found = []
    async for key in redis.scan_iter(match=prefix + "*", count=500):
        kind = await redis.type(key)
        if kind == "string":
            blobs = [str(await redis.get(key))]
        elif kind == "hash":
            blobs = [f"{k!s}={v!s}" for k, v in (await redis.hgetall(key)).items()]
        elif kind == "list":
            blobs = [str(v) for v in await redis.lrange(key, 0, -1)]
        elif kind == "set":
            blobs = [str(v) for v in await redis.smembers(key)]
        elif kind == "zset":
            blobs = [str(v) for v in await redis.zrange(key, 0, -1)]
        elif kind == "stream":
            blobs = [str(fields) for _, fields in await redis.xrange(key) or []]
        else:
            blobs = []
        found += [f"{key}: {b[:120]}" for b in [key, *blobs] if needle in b]
    return found


async def seed(app: object, redis: aioredis.Redis, keys: Keys, phone: str, n: int) -> None:
    service = app[CALLBACKS]  # type: ignore[index]
    router = app[ROUTER]  # type: ignore[index]
    now = int(time.time() * 1000)
    later = await service.store.create(
        NewJob(kind=JobKind.CARE_FOLLOW_UP, phone=phone, due_ms=now + 3_600_000)
    )
    done = await service.store.create(
        NewJob(kind=JobKind.SURVEY, phone=phone, due_ms=now + 7_200_000)
    )
    await service.store.cancel(done.id)  # a finished job
    assert later.id != done.id
    await service.surveys.record(
        SurveyAnswer(
            call_sid=call_sid(n), answered_ms=now, score=2, queue="general", phone=phone,
            comment_url="https://api.twilio.test/Recordings/RE1",
        )
    )  # fmt: skip
    await service.open_case(
        kind=CaseKind.COMPLAINT, phone=phone, call_sid=call_sid(n + 1), note=f"call {phone}"
    )
    await router.join(call_sid(n + 2), "general", info={"caller": phone})
    await router.leave(call_sid(n + 2), "abandoned")
    await add_voice_message(
        redis, keys, call_sid=call_sid(n + 3), caller=phone, lang="en",
        recording_url="https://api.twilio.test/Recordings/RE2", duration_s=5, flags=frozenset(),
    )  # fmt: skip


async def test_erasure_removes_the_number_everywhere_but_the_dnc_list(
    full_service: FullService, redis: aioredis.Redis, keys: Keys
) -> None:
    client = await full_service(api_tokens=TOKENS)
    app = client.server.app  # type: ignore[attr-defined]
    await seed(app, redis, keys, ERASED, 100)
    await seed(app, redis, keys, OTHER, 200)
    await app[CALLBACKS].store.dnc_add([ERASED])
    digits = ERASED.lstrip("+")
    assert len(await values_with(redis, keys.prefix, digits)) >= 6
    other_before = await values_with(redis, keys.prefix, OTHER.lstrip("+"))

    path = f"/api/v1/customers/{ERASED}"
    assert (await client.delete(path)).status == 401
    for token in ("care-token-1", "view-token-1"):
        response = await client.delete(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status == 403, token
    bad = await client.delete(
        "/api/v1/customers/12345", headers={"Authorization": "Bearer sup-token-1"}
    )
    assert bad.status == 422 and (await bad.json())["fields"] == {"phone": "invalid E.164 number"}

    response = await client.delete(path, headers={"Authorization": "Bearer sup-token-1"})
    assert response.status == 200
    report = await response.json()
    assert report["phone"] == "***2233"
    assert report["jobs_deleted"] >= 2 and report["jobs_cancelled"] >= 1
    assert report["surveys_anonymised"] == 1 and report["cases_anonymised"] == 1
    assert report["abandoned_removed"] == 1 and report["voice_messages_removed"] == 1
    assert report["dnc_kept"] is True

    left = await values_with(redis, keys.prefix, digits)
    assert left == [f"{keys.cb_dnc()}: {ERASED}"], left
    assert await values_with(redis, keys.prefix, OTHER.lstrip("+")) == other_before
    survey = await app[CALLBACKS].surveys.get(call_sid(100))
    assert survey is not None and survey.score == 2 and survey.phone is None  # stats stay

    again = await client.delete(path, headers={"Authorization": "Bearer sup-token-1"})
    assert again.status == 200
    counts = {k: v for k, v in (await again.json()).items() if type(v) is int}
    assert counts == dict.fromkeys(
        (
            "jobs_cancelled", "jobs_deleted", "jobs_in_flight", "surveys_anonymised",
            "cases_anonymised", "abandoned_removed", "ended_calls_removed",
            "voice_messages_removed",
        ),
        0,
    )  # fmt: skip
