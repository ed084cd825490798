"""Emulated time: every wait is divided by the speed-up factor K.

Durations in the emulator (Pause, Gather timeout, ringing, handle times, waitUrl loops,
media pacing) are *emulated* seconds. `Clock.sleep(s)` waits s / K real seconds, and
`Clock.elapsed()` reports emulated seconds since the clock started, so CallDuration,
QueueTime and the transcript's duration_s read as they would on a real call.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self, speedup: float = 1.0) -> None:
        if speedup <= 0:
            raise ValueError(f"speedup must be positive, got {speedup!r}")
        self.speedup = float(speedup)
        self._t0 = time.monotonic()
        self._wall0 = datetime.now(UTC)

    def elapsed(self) -> float:
        """Emulated seconds since the clock was created."""
        return (time.monotonic() - self._t0) * self.speedup

    def now(self) -> datetime:
        """Emulated wall-clock time (UTC)."""
        return self._wall0 + timedelta(seconds=self.elapsed())

    def real(self, emulated_seconds: float) -> float:
        """Real seconds that `emulated_seconds` last."""
        return max(0.0, emulated_seconds) / self.speedup

    async def sleep(self, emulated_seconds: float) -> None:
        await asyncio.sleep(self.real(emulated_seconds))


def rfc2822(moment: datetime) -> str:
    """Twilio's date format in REST bodies: 'Sat, 28 Nov 2026 14:53:10 +0000'."""
    return moment.strftime("%a, %d %b %Y %H:%M:%S +0000")
