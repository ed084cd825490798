"""A value recomputed at most once per `max_age_s` per process, shared by concurrent readers.

`Recent.get(compute)` returns the held value while it is younger than `max_age_s`; otherwise
one caller computes it and every caller that arrives meanwhile waits for that result instead
of computing its own (no stampede when it expires under load). Bound: one value per
instance. Staleness: at most `max_age_s` plus one computation; `get` returns the age.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Recent(Generic[T]):
    def __init__(self, max_age_s: float) -> None:
        self.max_age_s = max_age_s
        self._value: T | None = None
        self._at = -float("inf")  # time.monotonic() when the held value was computed
        self._lock = asyncio.Lock()

    def peek(self) -> tuple[T, float] | None:
        """The held value and its age in seconds if it is young enough, else None."""
        age = time.monotonic() - self._at
        if self._value is None or age >= self.max_age_s:
            return None
        return self._value, age

    def put(self, value: T, at: float | None = None) -> None:
        """Hold `value`, read at `at` (time.monotonic(); default now)."""
        self._value, self._at = value, time.monotonic() if at is None else at

    async def get(self, compute: Callable[[], Awaitable[T]]) -> tuple[T, float]:
        held = self.peek()
        if held is not None:
            return held
        async with self._lock:
            held = self.peek()  # computed by the caller we waited for
            if held is not None:
                return held
            started = time.monotonic()  # the age counts from before the reads
            value = await compute()
            self.put(value, started)
            return value, time.monotonic() - started
