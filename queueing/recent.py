"""A value recomputed at most once per `max_age_s` per process, shared by concurrent readers.

`Recent.get(compute)` returns the held value while it is younger than `max_age_s`. After
that one refresh runs (never two at once: every caller that needs it waits for that one
task, shielded, so a caller that goes away does not cancel it for the others):

- without `stale_max_s` (or with it equal to `max_age_s`) every caller waits for the
  refresh, as when nothing is held;
- with `stale_max_s > max_age_s` (stale-while-revalidate) the refresh runs in the
  background and callers keep getting the held value, with its true age, until it is
  `stale_max_s` old; past that bound they wait for the refresh. The first computation
  (nothing held yet) is always waited for.

A background refresh that fails is logged (the first failure at once, then at most once a
minute while failures go on, with their count; `failures` counts them all) and the held
value keeps being served within `stale_max_s`; the next refresh starts on the first
`get` at least `retry_s` after the failure. A caller that waits for a refresh that fails
gets its exception. Bound: one value and at most one refresh task per instance.
Staleness: at most `stale_max_s` (plus one computation when it has to be waited for);
`get` returns the age, counted from before the computation's reads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")

log = logging.getLogger("hotline.queueing")

ERROR_LOG_EVERY_S = 60.0


class Recent(Generic[T]):
    def __init__(
        self,
        max_age_s: float,
        *,
        stale_max_s: float | None = None,
        retry_s: float | None = None,
        name: str = "cached value",
    ) -> None:
        stale = max_age_s if stale_max_s is None else stale_max_s
        if max_age_s < 0 or stale < max_age_s:  # 0: every get reads (shared while it runs)
            raise ValueError(f"{name}: need 0 <= max_age_s <= stale_max_s")
        self.max_age_s = max_age_s
        self.stale_max_s = stale
        self.retry_s = max_age_s if retry_s is None else retry_s
        self.name = name
        self.failures = 0  # background refreshes that failed, ever
        self._value: T | None = None
        self._at = -float("inf")  # time.monotonic() when the held value was read
        self._refresh: asyncio.Task[tuple[T, float]] | None = None
        self._failed_at = -float("inf")
        self._logged_at = -float("inf")
        self._unlogged = 0  # failures not logged yet
        self._failing = 0  # failures since the last refresh that worked

    def peek(self) -> tuple[T, float] | None:
        """The held value and its age in seconds if it is young enough, else None."""
        age = time.monotonic() - self._at
        if self._value is None or age >= self.max_age_s:
            return None
        return self._value, age

    def put(self, value: T, at: float | None = None) -> None:
        """Hold `value`, read at `at` (time.monotonic(); default now)."""
        self._value, self._at = value, time.monotonic() if at is None else at

    @property
    def refreshing(self) -> bool:
        return self._refresh is not None

    async def get(self, compute: Callable[[], Awaitable[T]]) -> tuple[T, float]:
        now = time.monotonic()
        age = now - self._at
        value = self._value
        if value is not None and age < self.max_age_s:
            return value, age
        task = self._refresh
        if value is not None and age < self.stale_max_s:
            if task is None and now - self._failed_at >= self.retry_s:
                self._start(compute)
            return value, age  # the refresh runs meanwhile
        if task is None:
            task = self._start(compute)
        fresh, at = await asyncio.shield(task)
        return fresh, time.monotonic() - at

    def _start(self, compute: Callable[[], Awaitable[T]]) -> asyncio.Task[tuple[T, float]]:
        task = asyncio.get_running_loop().create_task(self._run(compute))
        self._refresh = task
        task.add_done_callback(self._done)
        return task

    async def _run(self, compute: Callable[[], Awaitable[T]]) -> tuple[T, float]:
        started = time.monotonic()  # the age counts from before the reads
        try:
            value = await compute()
            if started >= self._at:  # never replace a newer value (see `put`)
                self.put(value, started)
            return value, started
        finally:
            if self._refresh is asyncio.current_task():
                self._refresh = None

    def _done(self, task: asyncio.Task[tuple[T, float]]) -> None:
        if self._refresh is task:  # cancelled before it ran: its `finally` never did
            self._refresh = None
        if task.cancelled():
            return
        exc = task.exception()  # retrieved here, whoever else awaits it
        if exc is None:
            if self._failing:
                log.warning("%s: refresh works again after %d failures", self.name, self._failing)
                self._failing = self._unlogged = 0
            return
        self.failures += 1
        self._failing += 1
        self._failed_at = now = time.monotonic()
        if now - self._logged_at >= ERROR_LOG_EVERY_S:
            self._logged_at = now
            age = now - self._at
            held = f"held value {age:.1f} s old" if self._value is not None else "nothing held"
            log.error(
                "%s: refresh failed (%d more since the last report; %s)",
                self.name,
                self._unlogged,
                held,
                exc_info=exc,
            )
            self._unlogged = 0
        else:
            self._unlogged += 1

    async def aclose(self) -> None:
        """Cancel a refresh in flight and wait for it to end (shutdown)."""
        task = self._refresh
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
