"""A call's status (Twilio's CallStatus values), its transition table, and the ordered,
signed status callbacks that report it."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from emulator.clock import Clock, rfc2822
from emulator.webhooks import Webhooks


class CallStatus(str, enum.Enum):
    QUEUED = "queued"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    BUSY = "busy"
    FAILED = "failed"
    NO_ANSWER = "no-answer"
    CANCELED = "canceled"


TERMINAL = frozenset(
    {
        CallStatus.COMPLETED,
        CallStatus.BUSY,
        CallStatus.FAILED,
        CallStatus.NO_ANSWER,
        CallStatus.CANCELED,
    }
)

TRANSITIONS: Mapping[CallStatus, frozenset[CallStatus]] = {
    CallStatus.QUEUED: frozenset(
        {CallStatus.RINGING, CallStatus.CANCELED, CallStatus.FAILED, CallStatus.BUSY}
    ),
    CallStatus.RINGING: frozenset(
        {
            CallStatus.IN_PROGRESS,
            CallStatus.BUSY,
            CallStatus.NO_ANSWER,
            CallStatus.FAILED,
            CallStatus.CANCELED,
        }
    ),
    CallStatus.IN_PROGRESS: frozenset({CallStatus.COMPLETED, CallStatus.FAILED}),
}

# statusCallbackEvent name -> the status change that fires it
EVENT_OF: Mapping[CallStatus, str] = {
    CallStatus.RINGING: "ringing",
    CallStatus.IN_PROGRESS: "answered",
    **{s: "completed" for s in TERMINAL},
}
EVENTS = ("initiated", "ringing", "answered", "completed")


class InvalidTransition(Exception):
    pass


def check_transition(old: CallStatus, new: CallStatus) -> None:
    if new not in TRANSITIONS.get(old, frozenset()):
        raise InvalidTransition(f"{old.value} -> {new.value}")


@dataclass(frozen=True)
class Callback:
    url: str
    method: str
    params: dict[str, str]


class StatusCallbacks:
    """Posts the subscribed events of one call, in order, one at a time, signed.

    SequenceNumber counts the callbacks actually sent for this call from 0, as Twilio's
    does; Timestamp is the emulated time of the event (RFC 2822)."""

    def __init__(
        self,
        webhooks: Webhooks,
        clock: Clock,
        url: str | None,
        method: str = "POST",
        events: tuple[str, ...] = ("completed",),
        on_sent: Callable[[Callback, int | None], None] | None = None,
    ) -> None:
        self._webhooks = webhooks
        self._clock = clock
        self.url = url
        self.method = method.upper()
        self.events = frozenset(e.strip().lower() for e in events if e.strip())
        self._sequence = 0
        self._queue: asyncio.Queue[Callback | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._on_sent = on_sent

    def emit(self, event: str, params: Mapping[str, str]) -> None:
        if not self.url or event not in self.events:
            return
        full = dict(params)
        full.update(
            {
                "SequenceNumber": str(self._sequence),
                "Timestamp": rfc2822(self._clock.now()),
                "CallbackSource": "call-progress-events",
            }
        )
        self._sequence += 1
        self._queue.put_nowait(Callback(self.url, self.method, full))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            cb = await self._queue.get()
            if cb is None:
                return
            status = await self._webhooks.notify(cb.url, cb.method, cb.params)
            if self._on_sent is not None:
                self._on_sent(cb, status)

    async def drain(self) -> None:
        """Wait until every emitted callback has been posted."""
        if self._task is None:
            return
        self._queue.put_nowait(None)
        await self._task
        self._task = None
