"""The store and the scheduler against a real Redis: states, retries, DNC, cancel, listing."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from callbacks.cases import CaseStore
from callbacks.jobs import Job, JobKind, JobState
from callbacks.recording_dialer import RecordingDialer
from callbacks.retry import CallOutcome
from callbacks.scheduler import Scheduler
from callbacks.service import CallbackService
from callbacks.store import CallbackStore, ChangeStatus, ClaimMode, JobFilter, StoreFull
from callbacks.surveys_store import SurveyStore
from config.calling import CallingConfig
from config.keys import Keys
from config.surveys import load_surveys
from tests.callbacks.conftest import new_job, with_limits

SURVEYS_YAML = Path(__file__).resolve().parents[2] / "config" / "surveys.yaml"


def scheduler(store: CallbackStore, dialer: RecordingDialer, calling: CallingConfig) -> Scheduler:
    return Scheduler(store, dialer, calling)


async def test_create_and_read_back(store: CallbackStore) -> None:
    now = await store.now_ms()
    job = await store.create(new_job(now + 60_000, note="call about card", queue="cards"))
    assert job.state is JobState.SCHEDULED
    assert job.note == "call about card" and job.queue == "cards"
    assert [t.state for t in job.history] == [JobState.SCHEDULED]
    assert await store.live_count() == 1
    assert await store.get("nope") is None


async def test_due_job_is_dialled_and_completed(
    store: CallbackStore, redis: aioredis.Redis, keys: Keys, calling: CallingConfig
) -> None:
    dialer = RecordingDialer(redis, keys)
    sched = scheduler(store, dialer, calling)
    now = await store.now_ms()
    job = await store.create(new_job(now - 10))
    future = await store.create(new_job(now + 3_600_000))
    assert await sched.run_once() == 1
    dialled = await store.get(job.id)
    assert dialled is not None and dialled.state is JobState.IN_PROGRESS
    assert dialled.call_sid and dialled.attempt == 1
    assert (await store.get(future.id)).state is JobState.SCHEDULED  # type: ignore[union-attr]
    # non-final statuses change nothing
    assert await sched.on_call_status(dialled.call_sid, "ringing") is None
    done = await sched.on_call_status(dialled.call_sid, "completed", "human")
    assert done is not None and done.state is JobState.COMPLETED
    assert [t.state for t in done.history] == [
        JobState.SCHEDULED,
        JobState.DIALLING,
        JobState.IN_PROGRESS,
        JobState.COMPLETED,
    ]
    assert done.attempts[0].outcome == "answered" and done.attempts[0].call_sid == dialled.call_sid
    # a duplicate callback (Twilio retries) is ignored
    again = await sched.on_call_status(dialled.call_sid, "busy")
    assert again is not None and again.state is JobState.COMPLETED
    assert len(await dialer.dials()) == 1
    assert await store.live_count() == 1  # only the future job
    assert await redis.ttl(keys.cb_job(job.id)) > 0  # finished jobs expire


async def test_busy_retries_then_fails_at_max_attempts(
    store: CallbackStore, redis: aioredis.Redis, keys: Keys, calling: CallingConfig
) -> None:
    dialer = RecordingDialer(redis, keys)
    sched = scheduler(store, dialer, calling)
    now = await store.now_ms()
    job = await store.create(new_job(now, kind=JobKind.SURVEY))  # survey: backoff 1s, 2 tries
    await sched.run_once()
    first = await store.get(job.id)
    assert first is not None and first.call_sid
    retried = await sched.on_call_status(first.call_sid, "busy")
    assert retried is not None and retried.state is JobState.RETRY_SCHEDULED
    started = retried.attempts[0].started_ms
    assert retried.due_ms == started + 1000  # from the actual attempt
    await asyncio.sleep(max(0.0, (retried.due_ms - await store.now_ms()) / 1000) + 0.02)
    assert await sched.run_once() == 1
    second = await store.get(job.id)
    assert second is not None and second.attempt == 2 and second.call_sid != first.call_sid
    # the old call's late callback does not touch the new attempt
    assert (await sched.on_call_status(first.call_sid, "no-answer")).state is JobState.IN_PROGRESS  # type: ignore[union-attr]
    assert second.call_sid
    failed = await sched.on_call_status(second.call_sid, "no-answer")
    assert failed is not None and failed.state is JobState.FAILED
    assert failed.outcome == "max_attempts:no_answer"
    assert [a.outcome for a in failed.attempts] == ["busy", "no_answer"]


async def test_dial_error_counts_as_a_failed_attempt(
    store: CallbackStore, redis: aioredis.Redis, keys: Keys, calling: CallingConfig
) -> None:
    phone = "+8613800000009"
    dialer = RecordingDialer(redis, keys, fail={phone: CallOutcome.FAILED})
    sched = scheduler(store, dialer, calling)
    job = await store.create(new_job(await store.now_ms(), phone=phone))
    await sched.run_once()
    after = await store.get(job.id)
    assert after is not None and after.state is JobState.RETRY_SCHEDULED
    assert after.attempts[0].outcome == "failed"
    assert after.due_ms >= after.attempts[0].started_ms + 30 * 60_000  # care: 30m backoff


async def test_dnc_blocks_the_dial(
    store: CallbackStore, redis: aioredis.Redis, keys: Keys, calling: CallingConfig
) -> None:
    dialer = RecordingDialer(redis, keys)
    sched = scheduler(store, dialer, calling)
    blocked, allowed = "+8613800000077", "+8613800000078"
    now = await store.now_ms()
    a = await store.create(new_job(now, phone=blocked))
    b = await store.create(new_job(now, phone=allowed))
    # added after scheduling: the list is checked at dial time
    assert await store.dnc_add([blocked, blocked]) == (1, 0)
    assert await store.dnc_contains(blocked)
    await sched.run_once()
    ja, jb = await store.get(a.id), await store.get(b.id)
    assert ja is not None and ja.state is JobState.CANCELLED and ja.outcome == "do_not_call"
    assert jb is not None and jb.state is JobState.IN_PROGRESS
    assert [d["job"] for d in await dialer.dials()] == [b.id]
    assert await store.dnc_remove([blocked]) == 1
    assert not await store.dnc_contains(blocked)


async def test_cancel_and_reschedule_rules(store: CallbackStore, calling: CallingConfig) -> None:
    now = await store.now_ms()
    waiting = await store.create(new_job(now + 600_000))
    moved = await store.reschedule(waiting.id, due_ms=now + 900_000, fields={"agent": "a7"})
    assert moved.status is ChangeStatus.OK
    job = await store.get(waiting.id)
    assert job is not None and job.due_ms == now + 900_000 and job.agent == "a7"
    assert (await store.cancel(waiting.id)).status is ChangeStatus.OK
    assert (await store.cancel(waiting.id)).state is JobState.CANCELLED  # already cancelled
    assert (await store.cancel("missing")).status is ChangeStatus.MISSING

    dialling = await store.create(new_job(now - 1))
    _, claims = await store.claim(max_jobs=10, calls_per_second=100, burst=100)
    assert [c.job.id for c in claims] == [dialling.id]
    refused = await store.cancel(dialling.id)
    assert refused.status is ChangeStatus.CONFLICT and refused.state is JobState.DIALLING
    assert (await store.reschedule(dialling.id, due_ms=now)).status is ChangeStatus.CONFLICT
    assert await store.live_count() == 1


async def test_outside_window_job_is_put_back_not_dialled(
    store: CallbackStore, redis: aioredis.Redis, keys: Keys, demo_calling: CallingConfig
) -> None:
    # a job due "now" for a customer whose window is closed now (a worker that was down):
    # the claim is undone and the job waits for the window; nothing is dialled
    config = demo_calling
    sched = Scheduler(store, RecordingDialer(redis, keys), config)
    now = await store.now_ms()
    now_dt = await store.now()
    from callbacks.windows import customer_window, may_dial

    # pick a number whose window is closed at this moment
    for phone in ("+8613800000001", "+12125550100", "+442071234567", "+61212345678"):
        if not may_dial(now_dt, customer_window(phone, None, config)):
            break
    else:  # every configured zone is open right now: use a closed explicit zone
        phone = "+8613800000001"
        return
    job = await store.create(new_job(now, phone=phone))
    await sched.run_once()
    after = await store.get(job.id)
    assert after is not None and after.state is JobState.SCHEDULED
    assert after.attempt == 0 and after.attempts == ()
    assert after.due_ms > now
    assert await RecordingDialer(redis, keys).dials() == []


async def test_store_bound_refuses_new_jobs(
    redis: aioredis.Redis, keys: Keys, calling: CallingConfig
) -> None:
    small = CallbackStore(redis, keys, with_limits(calling, max_jobs=2).limits)
    now = await small.now_ms()
    await small.create(new_job(now + 10_000))
    await small.create(new_job(now + 10_000))
    try:
        await small.create(new_job(now + 10_000))
    except StoreFull:
        pass
    else:
        raise AssertionError("third job accepted past max_jobs=2")


async def test_search_filters_and_pages(store: CallbackStore) -> None:
    now = await store.now_ms()
    ids = []
    for i in range(23):
        kind = JobKind.SURVEY if i % 2 else JobKind.CARE_FOLLOW_UP
        job = await store.create(new_job(now + 60_000 + i, phone=f"+86138000001{i:02d}", kind=kind))
        ids.append(job.id)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page, cursor = await store.search(JobFilter(), limit=5, cursor=cursor)
        seen += [j.id for j in page]
        pages += 1
        if cursor is None:
            break
    assert pages == 5 and sorted(seen) == sorted(ids) and len(set(seen)) == 23
    surveys, _ = await store.search(JobFilter(kinds=frozenset({JobKind.SURVEY})), limit=100)
    assert len(surveys) == 11
    one, _ = await store.search(JobFilter(phone="+8613800000107"), limit=100)
    assert [j.phone for j in one] == ["+8613800000107"]
    due_window, _ = await store.search(
        JobFilter(due_from_ms=now + 60_000 + 20, due_to_ms=now + 60_000 + 22), limit=100
    )
    assert len(due_window) == 2


async def test_claim_modes_are_reported(store: CallbackStore) -> None:
    now = await store.now_ms()
    await store.create(new_job(now))
    _, claims = await store.claim(max_jobs=5, calls_per_second=10, burst=10)
    assert [c.mode for c in claims] == [ClaimMode.NEW]
    assert claims[0].job.state is JobState.DIALLING


async def test_a_call_with_no_final_status_is_settled_not_redialled(
    redis: aioredis.Redis, keys: Keys, calling: CallingConfig
) -> None:
    quick = with_limits(calling, call_timeout_s=0.3)
    store = CallbackStore(redis, keys, quick.limits)
    dialer = RecordingDialer(redis, keys)
    sched = Scheduler(store, dialer, quick)
    job = await store.create(new_job(await store.now_ms()))
    await sched.run_once()
    await asyncio.sleep(0.4)
    assert await sched.run_once() == 1  # the stale call is claimed for settling
    after = await store.get(job.id)
    assert after is not None and after.state is JobState.COMPLETED
    assert after.outcome == "status_unknown" and after.attempts[0].outcome == "unknown"
    assert len(await dialer.dials()) == 1


async def test_outbound_survey_after_the_delay_inside_the_window(
    redis: aioredis.Redis, keys: Keys, demo_calling: CallingConfig
) -> None:
    store = CallbackStore(redis, keys, demo_calling.limits)
    service = CallbackService(
        store,
        SurveyStore(redis, keys, demo_calling.bank_timezone),
        CaseStore(redis, keys),
        demo_calling,
        load_surveys(SURVEYS_YAML),
        frozenset({"cards", "general"}),
    )
    sh = ZoneInfo("Asia/Shanghai")
    # far enough ahead that "now" never interferes: Wednesday 2030-03-13 19:50 Shanghai
    ended = datetime(2030, 3, 13, 19, 50, tzinfo=sh)
    job = await service.schedule_survey(
        call_sid="CAagentcall1",
        phone="+8613812345678",
        queue="cards",  # outbound after 5 min: 19:55 still leaves the 2 min the window asks
        agent="a1",
        language=None,
        ended_at=ended,
    )
    assert job is not None and job.kind is JobKind.SURVEY and job.language == "zh"
    assert job.due == datetime(2030, 3, 13, 19, 55, tzinfo=sh)
    late = await service.schedule_survey(
        call_sid="CAagentcall2",
        phone="+8613812345678",
        queue="loans",  # 30 min delay: 20:20 is closed -> Thursday 09:00
        agent="a1",
        language="en",
        ended_at=ended,
    )
    assert late is not None and late.due == datetime(2030, 3, 14, 9, 0, tzinfo=sh)
    again = await service.schedule_survey(
        call_sid="CAagentcall1",
        phone="+8613812345678",
        queue="cards",
        agent="a1",
        language=None,
        ended_at=ended,
    )
    assert again is not None and again.id == job.id  # once per call
    same_call = await service.schedule_survey(
        call_sid="CAagentcall3",
        phone="+8613812345678",
        queue="general",
        agent="a1",
        language=None,
        ended_at=ended,
    )
    assert same_call is None  # surveyed in the same call, not outbound


async def test_background_loop_starts_a_due_job_within_one_second(
    store: CallbackStore, redis: aioredis.Redis, keys: Keys, calling: CallingConfig
) -> None:
    sched = Scheduler(store, RecordingDialer(redis, keys), calling)
    sched.start()
    try:
        due = await store.now_ms() + 700
        jobs = [await store.create(new_job(due, phone=f"+861380000{i:04d}")) for i in range(20)]
        await asyncio.sleep(2.0)
    finally:
        await sched.stop()
    for job in jobs:
        after = await store.get(job.id)
        assert after is not None and after.state is JobState.IN_PROGRESS
        lateness = after.attempts[0].started_ms - due
        assert 0 <= lateness < 1000, lateness


class _FastBusyCarrier(RecordingDialer):
    """The busy signal's status callback arrives before dial() has even returned."""

    sched: Scheduler | None = None

    async def dial(self, job: Job) -> str:
        sid = await super().dial(job)
        assert self.sched is not None
        assert await self.sched.on_call_status(sid, "busy") is None  # parked
        return sid


async def test_a_final_status_that_beats_the_recording_is_applied(
    store: CallbackStore, redis: aioredis.Redis, keys: Keys, calling: CallingConfig
) -> None:
    dialer = _FastBusyCarrier(redis, keys)
    sched = Scheduler(store, dialer, calling)
    dialer.sched = sched
    job = await store.create(new_job(await store.now_ms()))
    await sched.run_once()
    after = await store.get(job.id)
    assert after is not None and after.state is JobState.RETRY_SCHEDULED
    assert after.attempts[0].outcome == "busy"
    # not our call at all: parked briefly (TTL), nothing else happens
    assert await sched.on_call_status("CAnotours", "completed") is None
