"""Routing: pair the moment a call joins or an agent becomes ready, plus a sweeper.

Pairing itself happens inside the Lua scripts (`queueing/store.py`), so whichever process
runs the join, the agent's ready, the completion or the sweep makes the reservation, and a
call can never be reserved twice. That process then hands each new reservation to the
`Dispatcher` (the IVR: redirect the Twilio call to `<Dial>` the agent). When `connect`
returns, the reservation's lease is extended to cover ringing (`store.dispatched`); when it
raises, the reservation is released (agent ready, call back to its place). If the process
dies in between, nobody extends the lease: the sweeper of any process sees it expire and
returns the call to its original place, the agent to not_ready (`lease_expired`).

`run_once()` does one sweep (expired leases, ended wrap-ups, pairing) and dispatches what
it paired; `start()`/`stop()` run it every `routing.sweep_every_s` in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Protocol

from redis.exceptions import RedisError

from queueing.stats import QueueStats, WaitInfo
from queueing.store import (
    JoinResult,
    OpResult,
    Pairing,
    QueueError,
    QueueStore,
    StaleReservation,
    SweepResult,
)

log = logging.getLogger("hotline.queueing")

CLOCK_SYNC_EVERY_S = 60.0


class CallGone(Exception):
    """Raised by a Dispatcher when the carrier says the call has already ended (its
    hang-up notification was lost): the call leaves the queue as abandoned instead of
    going back to its place to be paired again and again."""


class Dispatcher(Protocol):
    async def connect(self, pairing: Pairing) -> None:
        """Connect the reserved call to the agent (kind "callback": dial the customer).
        Return once the redirect has been accepted; raise if it failed (`CallGone` if the
        call no longer exists)."""


class Router:
    def __init__(
        self,
        store: QueueStore,
        dispatcher: Dispatcher,
        *,
        stats: QueueStats | None = None,
        sweep_every_s: float | None = None,
    ) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.stats = stats or QueueStats(store)
        self.sweep_every_s = sweep_every_s or store.config.routing.sweep_every_s
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._last_clock_sync = 0.0
        self.dispatched_count = 0
        self.failed_count = 0

    # --- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Measure the clock offset to Redis and start the sweeper loop."""
        try:
            await self.store.sync_clock()
            self._last_clock_sync = time.monotonic()
        except (RedisError, OSError) as exc:
            # Start anyway: callers get the emergency path until Redis is back, and the
            # loop re-measures the clock once it answers.
            log.error("redis unavailable at start; router keeps trying: %s", type(exc).__name__)
        if self._loop_task is None:
            self._stopping = asyncio.Event()
            self._loop_task = asyncio.create_task(self._loop(), name="queue-sweeper")

    async def stop(self, *, timeout_s: float = 5.0) -> None:
        """Stop the sweeper and wait (up to `timeout_s`) for dispatches in flight; any
        still running then are cancelled: their leases expire and the calls go back."""
        self._stopping.set()
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            async with asyncio.timeout(timeout_s):
                await self.drain()
        except TimeoutError:
            for pending in list(self._tasks):
                pending.cancel()
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def drain(self) -> None:
        """Wait until every dispatch started so far has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _loop(self) -> None:
        # The stop flag, not only cancellation, ends the loop: a cancellation that some
        # library turns into an ordinary error must not keep the sweeper alive.
        while not self._stopping.is_set():
            try:
                if time.monotonic() - self._last_clock_sync > CLOCK_SYNC_EVERY_S:
                    await self.store.sync_clock()
                    self._last_clock_sync = time.monotonic()
                await self.run_once()
            except Exception:
                log.exception("queue sweep failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.sweep_every_s):
                    await self._stopping.wait()

    async def run_once(self) -> SweepResult:
        """Expire leases, end timed wrap-ups, pair; dispatch and wait for the dispatches."""
        result = await self.store.sweep()
        for sid in result.expired:
            log.warning("reservation lease expired; call back in place", extra={"call_sid": sid})
        tasks = self._dispatch(result.pairings)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        return result

    # --- dispatch ----------------------------------------------------------------------
    def _dispatch(self, pairings: Iterable[Pairing]) -> list[asyncio.Task[None]]:
        started = []
        for pairing in pairings:
            task = asyncio.create_task(self._connect(pairing))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started.append(task)
        return started

    async def _connect(self, pairing: Pairing) -> None:
        extra = {
            "call_sid": pairing.call_sid,
            "agent": pairing.agent_id,
            "queue": pairing.queue,
            "reservation": pairing.reservation,
        }
        try:
            await self.dispatcher.connect(pairing)
        except CallGone:
            self.failed_count += 1
            log.warning("call already ended at the carrier; removed from the queue", extra=extra)
            with contextlib.suppress(StaleReservation):
                await self.store.no_answer(pairing.call_sid, pairing.reservation, party="system")
            with contextlib.suppress(QueueError):
                await self.store.leave(pairing.call_sid, "abandoned")
            return
        except Exception:
            self.failed_count += 1
            log.exception("dispatch failed; releasing the reservation", extra=extra)
            try:
                await self.store.no_answer(pairing.call_sid, pairing.reservation, party="system")
            except StaleReservation:
                pass  # the caller hung up meanwhile, or the lease already returned the call
            except Exception:
                # Redis unreachable: the lease expires and the sweeper returns the call
                log.exception("could not release the reservation", extra=extra)
            return
        try:
            await self.store.dispatched(pairing)
            self.dispatched_count += 1
        except StaleReservation:
            log.warning("reservation went stale during dispatch", extra=extra)
        except Exception:
            # the redirect went out; without the longer lease the short one may expire
            # first, and then the answer is refused as stale (the IVR hangs up the agent leg)
            log.exception("could not extend the reservation lease", extra=extra)

    def _after(self, result: OpResult) -> OpResult:
        self._dispatch(result.pairings)
        return result

    # --- calls (the IVR's side) --------------------------------------------------------
    async def join(
        self,
        call_sid: str,
        queue: str,
        *,
        priority: int | None = None,
        attributes: Mapping[str, str] | None = None,
        info: Mapping[str, Any] | None = None,
        keep_joined_ms: int | None = None,
    ) -> JoinResult:
        """The call enters `queue`; if an agent is free it is paired and dispatched now."""
        result = await self.store.join(
            call_sid,
            queue,
            priority=priority,
            attributes=attributes,
            info=info,
            keep_joined_ms=keep_joined_ms,
        )
        self._dispatch(result.pairings)
        return result

    async def wait_info(self, call_sid: str) -> WaitInfo | None:
        """Position, time waited and estimated wait for the hold loop (None: not queued)."""
        return await self.stats.wait_info(call_sid)

    async def leave(
        self, call_sid: str, reason: Literal["abandoned", "cancelled"] = "abandoned"
    ) -> OpResult:
        return self._after(await self.store.leave(call_sid, reason))

    async def take_callback(self, call_sid: str, number: str) -> int | None:
        return await self.store.take_callback(call_sid, number)

    async def answer(self, call_sid: str, reservation: int) -> OpResult:
        return await self.store.answer(call_sid, reservation)

    async def no_answer(
        self,
        call_sid: str,
        reservation: int,
        *,
        party: Literal["agent", "customer", "system"] = "agent",
    ) -> OpResult:
        return self._after(await self.store.no_answer(call_sid, reservation, party=party))

    async def complete(self, call_sid: str) -> OpResult:
        return self._after(await self.store.complete(call_sid))

    # --- agents ------------------------------------------------------------------------
    async def login(self, agent_id: str, *, ready: bool = False) -> OpResult:
        return self._after(await self.store.login(agent_id, ready=ready))

    async def logout(self, agent_id: str) -> OpResult:
        return self._after(await self.store.logout(agent_id))

    async def ready(self, agent_id: str) -> OpResult:
        return self._after(await self.store.ready(agent_id))

    async def not_ready(self, agent_id: str, reason: str = "busy") -> OpResult:
        return self._after(await self.store.not_ready(agent_id, reason))

    async def end_wrap_up(self, agent_id: str) -> OpResult:
        return self._after(await self.store.end_wrap_up(agent_id))
