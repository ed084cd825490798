"""Twilio-native call queues (<Enqueue>, <Dial><Queue>, <Leave>).

Position is 1-based; AvgQueueTime is the average wait of the calls now in the queue
(Twilio's `average_wait_time`); the default maximum size is 1000 (Twilio's current
default for a Queue's max_size)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from emulator.clock import Clock
from emulator.flow import Fetch


@dataclass
class Bridge:
    """Two legs talking; whichever side ends it sets `ended` with a reason. The dequeued
    side hears `whisper` (the <Queue url>) first, then sets `started`."""

    other_sid: str
    other_address: str
    whisper: Fetch | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str = ""

    def end(self, reason: str) -> None:
        if not self.ended.is_set():
            self.reason = reason
            self.ended.set()


@dataclass
class QueueMember:
    call_sid: str
    enqueued_at: float
    bridged: asyncio.Future[Bridge]


@dataclass
class CallQueue:
    name: str
    sid: str
    max_size: int = 1000
    members: list[QueueMember] = field(default_factory=list)
    waiting_dequeuers: list[asyncio.Future[QueueMember]] = field(default_factory=list)

    def position(self, call_sid: str) -> int:
        for i, m in enumerate(self.members, start=1):
            if m.call_sid == call_sid:
                return i
        return 0

    def average_wait(self, clock: Clock) -> int:
        if not self.members:
            return 0
        now = clock.elapsed()
        return int(sum(now - m.enqueued_at for m in self.members) / len(self.members))

    def join(self, call_sid: str, clock: Clock) -> QueueMember | None:
        if len(self.members) >= self.max_size:
            return None
        member = QueueMember(call_sid, clock.elapsed(), asyncio.get_running_loop().create_future())
        self.members.append(member)
        while self.waiting_dequeuers:
            waiter = self.waiting_dequeuers.pop(0)
            if not waiter.done():
                self.members.remove(member)
                waiter.set_result(member)
                break
        return member

    def leave(self, member: QueueMember) -> None:
        if member in self.members:
            self.members.remove(member)

    def take_first(self) -> QueueMember | None:
        if not self.members:
            return None
        return self.members.pop(0)
