"""The scheduler loop: claim due jobs, check the window, dial once, settle the outcome.

`run_once()` claims one batch and waits until every claimed job is dispatched (tests drive
it step by step); `run()` loops until `stop()`, polling every `poll_s` (0.2 s by default,
so a due job starts within 1 s of its time at any rate the carrier allows). At most
`concurrency` dispatches run at once; keep it below the Redis client's pool size (redis-py
raises, rather than waits, when its pool of 100 connections is exhausted).

Never twice: the claim writes the dial's idempotency mark before the dial. A worker that
takes over an expired lease reconciles instead of dialling when the mark holds a CallSid,
and asks the dialer (`find_call`) when the mark says a dial was about to happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Protocol

from redis.exceptions import RedisError

from callbacks.jobs import Job, JobState, dt_to_ms, ms_to_dt
from callbacks.retry import CallOutcome, Decision, Verdict, decide, outcome_of
from callbacks.store import CallbackStore, Claim, ClaimMode
from callbacks.windows import customer_window, may_dial, next_dial_time
from config.calling import CallingConfig
from config.logs import mask_phone

log = logging.getLogger("hotline.callbacks")


class DialError(Exception):
    """The carrier refused or could not place the call. `outcome` says how the attempt
    counts (FAILED by default); `retryable=False` fails the job at once (a number the
    carrier says does not exist, a blocked destination)."""

    def __init__(
        self, message: str, *, outcome: CallOutcome = CallOutcome.FAILED, retryable: bool = True
    ) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.retryable = retryable


class Dialer(Protocol):
    async def dial(self, job: Job) -> str:
        """Place the outbound call for `job` (its `attempt` is the attempt number); return
        the CallSid or raise DialError. `idempotency_key(job)` names this attempt."""
        ...

    async def find_call(self, job: Job) -> str | None:
        """The CallSid of a call already placed for this attempt, if the carrier has one
        (asked only when a worker died between marking and recording a dial)."""
        ...


def idempotency_key(job: Job) -> str:
    return f"{job.id}:{job.attempt}"


SettledHook = Callable[[Job], Awaitable[None]]
StartResult = tuple[bool, dict[str, str] | None]


class StartBatcher:
    """Group commit of the "dial recorded" step (dialling -> in_progress with the CallSid).

    Dispatches running together hand their (job, lease, CallSid) to `mark()`; one flusher
    writes everything pending in one script call (`store.mark_started_many`), and whatever
    arrives while that call is in flight goes in the next one. Each dispatch still waits
    for its own result, so nothing is acknowledged before Redis has it: under load this
    halves the Redis round trips per dial without adding latency when idle.
    """

    def __init__(self, store: CallbackStore, max_batch: int = 200) -> None:
        self.store = store
        self.max_batch = max_batch
        self._pending: list[tuple[tuple[str, str, str], asyncio.Future[StartResult]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def mark(self, job_id: str, lease: str, call_sid: str) -> StartResult:
        future: asyncio.Future[StartResult] = asyncio.get_running_loop().create_future()
        self._pending.append(((job_id, lease, call_sid), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="callbacks-start-batch")
        return await future

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the dispatches finishing in this loop turn join in
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            settled = False
            try:
                results = await self.store.mark_started_many([item for item, _ in batch])
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
                settled = True
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                settled = True
            finally:
                if not settled:
                    # cancelled mid-call (shutdown): the waiting dispatches are cancelled
                    # too; their leases expire and recovery reconciles from the mark
                    for _, future in batch:
                        future.cancel()


class Scheduler:
    def __init__(
        self,
        store: CallbackStore,
        dialer: Dialer,
        config: CallingConfig,
        *,
        batch: int = 100,
        concurrency: int = 32,
        poll_s: float = 0.2,
        on_settled: SettledHook | None = None,
    ) -> None:
        self.store = store
        self.dialer = dialer
        self.config = config
        self.batch = batch
        self.poll_s = poll_s
        self.on_settled = on_settled
        self._slots = asyncio.Semaphore(concurrency)
        self._starts = StartBatcher(store, max_batch=max(batch, 1))
        self._claimed_at: dict[str, float] = {}  # lease token -> monotonic time of the claim
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.dialled = 0  # dials placed by this process (for the bench and logs)

    # --- loop ---------------------------------------------------------------------------
    async def run_once(self) -> int:
        """Claim one batch, dispatch every claim, wait for them; return how many."""
        claims = await self._claim()
        if claims:
            await asyncio.gather(*(self._bounded(c) for c in claims))
        return len(claims)

    async def _bounded(self, claim: Claim) -> None:
        async with self._slots:
            await self._dispatch(claim)

    async def _claim(self) -> list[Claim]:
        _, claims = await self.store.claim(
            max_jobs=self.batch,
            calls_per_second=self.config.calls_per_second,
            burst=self.config.burst,
        )
        now = time.monotonic()
        if claims:
            self._claimed_at[claims[0].lease] = now  # one lease token per claimed batch
        horizon = now - 2 * self.config.limits.lease_s
        for lease in [k for k, at in self._claimed_at.items() if at < horizon]:
            del self._claimed_at[lease]
        return claims

    def _too_late_to_dial(self, claim: Claim) -> bool:
        """A claim that waited for a dispatch slot past half its lease is not dialled: the
        lease could expire during the dial and another worker then dial it too."""
        claimed = self._claimed_at.get(claim.lease)
        return claimed is not None and (time.monotonic() - claimed > self.config.limits.lease_s / 2)

    async def run(self) -> None:
        """Claim and dispatch until stop(); dispatches run concurrently (bounded)."""
        while not self._stopping.is_set():
            try:
                await self._slots.acquire()
                self._slots.release()
                claims = await self._claim()
            except (RedisError, OSError) as exc:
                # Redis restarting or unreachable: keep the loop alive and try again.
                log.warning("claim failed; retrying", extra={"error": str(exc)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), 1.0)
                continue
            for claim in claims:
                await self._slots.acquire()
                task = asyncio.create_task(self._guarded(claim))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            if len(claims) < self.batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.poll_s)

    async def _guarded(self, claim: Claim) -> None:
        try:
            await self._dispatch(claim)
        except Exception:
            # The job stays 'dialling' under its lease; when the lease expires another
            # worker recovers it through the idempotency mark. Never a second blind dial.
            log.exception("dispatch failed", extra={"job_id": claim.job.id})
        finally:
            self._slots.release()

    def start(self) -> asyncio.Task[None]:
        """Start `run()` in the background (call from a cleanup_ctx; stop() in its finally)."""
        if self._task is None or self._task.done():
            self._stopping.clear()
            self._task = asyncio.create_task(self.run(), name="callbacks-scheduler")
        return self._task

    async def stop(self) -> None:
        """Stop claiming, let in-flight dispatches finish, return when the loop has ended."""
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    # --- one claim ----------------------------------------------------------------------
    async def _dispatch(self, claim: Claim) -> None:
        job = claim.job
        extra = {"job_id": job.id, "kind": job.kind.value, "phone": mask_phone(job.phone)}
        if claim.mode is ClaimMode.DNC:
            log.info("do-not-call: job cancelled", extra=extra)
            return
        if claim.mode is ClaimMode.STALE:
            if job.call_sid:
                await self._settle(job, job.call_sid, CallOutcome.UNKNOWN, None)
            return
        if claim.mode is ClaimMode.RECOVER:
            if claim.dial_happened:
                log.info("recovered: dial had happened; reconciling", extra=extra)
                await self._started(job, claim.lease, claim.old_mark)
                return
            if claim.dial_uncertain:
                found = await self.dialer.find_call(job)
                if found:
                    log.info("recovered: carrier has the call; reconciling", extra=extra)
                    await self._started(job, claim.lease, found)
                    return
        now = ms_to_dt(claim.claimed_ms)
        if not await self._inside_window(claim, now):
            return
        if self._too_late_to_dial(claim):
            log.warning("claim waited past half its lease; put back undialled", extra=extra)
            await self.store.put_back(job.id, claim.lease, job.due_ms, "lease_too_short")
            return
        try:
            call_sid = await self.dialer.dial(job)
        except DialError as exc:
            log.info("dial failed", extra={**extra, "error": str(exc)})
            await self._after_failed_dial(claim, exc)
            return
        self.dialled += 1
        if not await self._started(job, claim.lease, call_sid):
            log.warning("lease lost during dial", extra={**extra, "call_sid": call_sid})

    async def _started(self, job: Job, lease: str, call_sid: str) -> bool:
        ok, early = await self._starts.mark(job.id, lease, call_sid)
        if early is not None:
            # the carrier's final status beat our recording of the dial: apply it now
            await self.on_call_status(call_sid, early["status"], early["answered_by"] or None)
        return ok

    async def _inside_window(self, claim: Claim, now: datetime) -> bool:
        """Put the job back (or fail it) if the window does not allow a dial right now."""
        job = claim.job
        window = customer_window(job.phone, job.timezone, self.config)
        min_left = timedelta(seconds=self.config.min_window_left_s)
        not_after = ms_to_dt(job.not_after_ms) if job.not_after_ms else None
        if not_after is not None and now > not_after:
            await self.store.fail_unclaimed(job.id, claim.lease, "deadline_passed")
            return False
        if may_dial(now, window, min_left):
            return True
        when = next_dial_time(now, window, min_left=min_left, not_after=not_after)
        if when is None:
            await self.store.fail_unclaimed(job.id, claim.lease, "no_window")
        else:
            await self.store.put_back(job.id, claim.lease, dt_to_ms(when), "outside_window")
        return False

    async def _after_failed_dial(self, claim: Claim, exc: DialError) -> None:
        job = claim.job
        if exc.retryable:
            decision = self.decide(job, exc.outcome, ms_to_dt(claim.claimed_ms))
        else:
            decision = Decision(Verdict.FAILED, f"rejected:{exc.outcome.value}")
        await self._apply(job, decision, exc.outcome, None, lease=claim.lease, call_sid=None)

    # --- outcomes -----------------------------------------------------------------------
    def decide(self, job: Job, outcome: CallOutcome, attempted_at: datetime) -> Decision:
        return decide(
            outcome,
            policy=self.config.retry_for(job.kind.value),
            attempt=job.attempt,
            attempted_at=attempted_at,
            window=customer_window(job.phone, job.timezone, self.config),
            min_left=timedelta(seconds=self.config.min_window_left_s),
            not_after=ms_to_dt(job.not_after_ms) if job.not_after_ms else None,
        )

    async def on_call_status(
        self, call_sid: str, status: str, answered_by: str | None = None
    ) -> Job | None:
        """Feed a carrier status callback (CallStatus, AnsweredBy) back into the job.
        Non-final statuses and calls that are not ours return None; duplicates and late
        callbacks change nothing and return the job as it is."""
        outcome = outcome_of(status, answered_by)
        if outcome is None:
            return None
        job_id = await self.store.job_for_call(call_sid)
        if job_id is None:
            # Either not our call, or its final status beat the recording of the dial
            # (a busy line can answer in milliseconds): park it for the recording.
            if await self.store.park_early_status(call_sid, status, answered_by):
                return None
            job_id = await self.store.job_for_call(call_sid)
            if job_id is None:
                return None
        job = await self.store.get(job_id)
        if job is None:
            return None
        if job.state is not JobState.IN_PROGRESS or job.call_sid != call_sid:
            return job
        return await self._settle(job, call_sid, outcome, answered_by)

    async def _settle(
        self, job: Job, call_sid: str, outcome: CallOutcome, answered_by: str | None
    ) -> Job | None:
        started = job.attempts[-1].started_ms if job.attempts else job.updated_ms
        decision = self.decide(job, outcome, ms_to_dt(started))
        return await self._apply(job, decision, outcome, answered_by, lease=None, call_sid=call_sid)

    async def _apply(
        self,
        job: Job,
        decision: Decision,
        outcome: CallOutcome,
        answered_by: str | None,
        *,
        lease: str | None,
        call_sid: str | None,
    ) -> Job | None:
        target = {
            Verdict.COMPLETED: JobState.COMPLETED,
            Verdict.RETRY: JobState.RETRY_SCHEDULED,
            Verdict.FAILED: JobState.FAILED,
        }[decision.verdict]
        changed = await self.store.finish_attempt(
            job.id,
            target=target,
            attempt=job.attempt,
            outcome=outcome.value,
            reason=decision.reason,
            call_sid=call_sid,
            lease=lease,
            answered_by=answered_by,
            retry_due_ms=dt_to_ms(decision.retry_at) if decision.retry_at else None,
        )
        settled = await self.store.get(job.id)
        if changed and settled is not None and self.on_settled is not None:
            await self.on_settled(settled)
        return settled
