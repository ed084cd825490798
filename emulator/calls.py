"""One emulated call: its state machine, its supervisor loop and its transcript.

The supervisor runs the call's TwiML one document at a time in a child task (a
"segment"). Things that happen outside the TwiML (the caller hangs up, a REST update
redirects or completes the call, the caller's patience runs out in a queue) cancel the
running segment; the segment's `finally` blocks release what it held (queue place,
agent phone, media stream, which then sends `stop`), and the supervisor goes on with
the new TwiML or ends the call. Status callbacks are posted in order by
`StatusCallbacks`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from emulator.clock import rfc2822
from emulator.errors import DebuggerEntry
from emulator.flow import End, Fetch, Inline, Interrupt, Next
from emulator.parties import AgentPhone, CallerScript, CustomerPhone, StreamInput, sample
from emulator.state import EVENT_OF, TERMINAL, CallStatus, StatusCallbacks, check_transition
from emulator.transcript import Heard, Transcript

if TYPE_CHECKING:
    from emulator.emulator import CarrierEmulator

log = logging.getLogger("hotline.emulator")

API_VERSION = "2010-04-01"


@dataclass
class CallSetup:
    """How a call starts: who, where its TwiML comes from, where its callbacks go."""

    from_: str
    to: str
    direction: str  # inbound | outbound-api | outbound-dial
    url: str | None = None
    method: str = "POST"
    twiml: str | None = None
    fallback_url: str | None = None
    fallback_method: str = "POST"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    status_callback_events: tuple[str, ...] = ("completed",)
    script: CallerScript = field(default_factory=CallerScript)
    far_end: AgentPhone | CustomerPhone | None = None
    ring_timeout: float = 60.0
    machine_detection: str | None = None
    parent_call_sid: str | None = None


class Call:
    def __init__(self, emu: CarrierEmulator, sid: str, setup: CallSetup) -> None:
        self.emu = emu
        self.sid = sid
        self.setup = setup
        self.direction = setup.direction
        self.script = setup.script
        self.status = (
            CallStatus.RINGING if setup.direction == "inbound" else CallStatus.QUEUED
        )
        self.created = emu.clock.now()
        self.updated = self.created
        self.start_time = self.created if setup.direction == "inbound" else None
        self.end_time: datetime | None = None
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.answered_by: str | None = None  # AMD result for outbound-api calls
        self.transcript = Transcript(sid, setup.direction, setup.from_, setup.to)
        self.callbacks = StatusCallbacks(
            emu.webhooks,
            emu.clock,
            setup.status_callback,
            setup.status_callback_method,
            setup.status_callback_events,
            on_sent=lambda cb, status: emu.callback_log.append((cb, status)),
        )
        self.document_url: str | None = setup.url
        self.used_fallback = False
        self._presses: Iterator[str | None] = iter(setup.script.presses)
        self._stream_inputs: Iterator[StreamInput] = iter(setup.script.stream_inputs)
        self._interrupt: Interrupt | None = None
        self._segment: asyncio.Task[Next | End | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._finished = asyncio.Event()
        self.on_interrupt: Callable[[Interrupt], Fetch | None] | None = None
        self.background: set[asyncio.Task[None]] = set()
        self.stop_streams: dict[str, asyncio.Event] = {}
        self.on_end: list[Callable[[], None]] = []

    # ------------------------------------------------------------ parameters

    def base_params(self) -> dict[str, str]:
        s = self.setup
        params = {
            "AccountSid": self.emu.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": self.sid,
            "CallStatus": self.status.value,
            "Called": s.to,
            "Caller": s.from_,
            "Direction": self.direction,
            "From": s.from_,
            "To": s.to,
        }
        if s.parent_call_sid:
            params["ParentCallSid"] = s.parent_call_sid
        if self.answered_by:
            params["AnsweredBy"] = self.answered_by
        return params

    def duration_s(self) -> float:
        if self.answered_at is None:
            return 0.0
        end = self.ended_at if self.ended_at is not None else self.emu.clock.elapsed()
        return max(0.0, end - self.answered_at)

    # ------------------------------------------------------------ state

    def set_status(self, new: CallStatus, *, emit: bool = True) -> None:
        if new == self.status:
            return
        check_transition(self.status, new)
        self.status = new
        self.updated = self.emu.clock.now()
        if new == CallStatus.IN_PROGRESS:
            self.answered_at = self.emu.clock.elapsed()
            self.start_time = self.start_time or self.updated
            if self.script.hangup_after is not None:
                delay = sample(self.script.hangup_after)
                if delay is not None:
                    self.after(delay, lambda: self.hangup("caller-hangup"))
        if new in TERMINAL:
            self.ended_at = self.emu.clock.elapsed()
            self.end_time = self.updated
            self.transcript.outcome.final_status = new.value
            self.transcript.outcome.duration_s = round(self.duration_s(), 3)
        if emit:
            params = self.base_params()
            if new in TERMINAL:
                params["CallDuration"] = str(int(round(self.duration_s())))
                params["Duration"] = str(int((self.duration_s() + 59) // 60))
            self.callbacks.emit(EVENT_OF[new], params)

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The call's supervisor task (None before `start`)."""
        return self._task

    def after(self, emulated_s: float, fn: Callable[[], None]) -> asyncio.TimerHandle:
        handle = asyncio.get_running_loop().call_later(self.emu.clock.real(emulated_s), fn)
        self._timers.append(handle)
        return handle

    # ------------------------------------------------------------ script

    def next_press(self) -> str | None:
        return next(self._presses, None)

    def next_stream_input(self) -> StreamInput | None:
        return next(self._stream_inputs, None)

    # ------------------------------------------------------------ control from outside

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"call-{self.sid}")

    def redirect(self, nxt: Next) -> None:
        """REST update with Url or Twiml: stop the current TwiML and run `nxt`."""
        self._interrupt_with(Interrupt("redirect", next=nxt))

    def hangup(self, reason: str, *, abandoned: bool = False, cancel: bool = False) -> None:
        """End the call from outside the TwiML (caller, REST, patience)."""
        if self.finished or self.status in TERMINAL:
            return
        self._interrupt_with(Interrupt("hangup", reason=reason, abandoned=abandoned, cancel=cancel))

    def _interrupt_with(self, intr: Interrupt) -> None:
        if self._interrupt is not None and self._interrupt.kind == "hangup":
            return  # a hang-up already wins
        self._interrupt = intr
        if self._segment is not None and not self._segment.done():
            self._segment.cancel()

    async def wait_finished(self, timeout: float | None = None) -> Transcript:  # noqa: ASYNC109
        """Wait (real seconds) until the call has ended and its callbacks were posted."""
        await asyncio.wait_for(self._finished.wait(), timeout)
        return self.transcript

    # ------------------------------------------------------------ supervisor

    async def _run(self) -> None:
        from emulator.interpreter import Interpreter

        interp = Interpreter(self)
        try:
            if self.direction != "inbound":
                rang = await self._segment_run(interp.dial_out())
                if rang is None:  # canceled over REST while queued or ringing
                    intr = self._interrupt
                    self._interrupt = None
                    if intr is not None:
                        self._end_by(intr)
                    return
                if not (isinstance(rang, End) and rang.reason == "answered"):
                    return
            nxt: Next | None
            if self.setup.twiml is not None:
                nxt = Inline(self.setup.twiml, self.setup.url)
            elif self.setup.url is not None:
                nxt = Fetch(self.setup.url, self.setup.method)
            else:
                nxt = None
            while nxt is not None:
                result = await self._segment_run(interp.run_next(nxt))
                if result is None:  # interrupted
                    intr = self._interrupt
                    self._interrupt = None
                    assert intr is not None
                    notify = self.on_interrupt(intr) if self.on_interrupt else None
                    self.on_interrupt = None
                    if intr.kind == "redirect" and self.status not in TERMINAL:
                        if notify is not None:  # posted alongside the new TwiML's fetch
                            task = asyncio.get_running_loop().create_task(
                                interp.notify_action(notify)
                            )
                            self.background.add(task)
                            task.add_done_callback(self.background.discard)
                        nxt = intr.next
                        continue
                    self._end_by(intr)  # the call is over before its action request
                    if notify is not None:
                        await interp.notify_action(notify)
                    return
                if isinstance(result, End):
                    self._finish(result.reason)
                    return
                nxt = result
            self._finish("end-of-twiml")
        except Exception:
            log.exception("emulator call failed", extra={"call_sid": self.sid})
            self.emu.internal_errors.append(self.sid)
            self._finish("emulator-error")
        finally:
            for handle in self._timers:
                handle.cancel()
            for stop in self.stop_streams.values():
                stop.set()
            if self.background:
                await asyncio.wait(self.background)
            if self.status not in TERMINAL:
                self._finish(self.transcript.outcome.hangup_reason or "emulator-stopped")
            for release in self.on_end:
                release()
            await self.callbacks.drain()
            self._finished.set()

    async def _segment_run(
        self, coro: Coroutine[Any, Any, Next | End | None]
    ) -> Next | End | None:
        """Run one segment; None if something outside interrupted it."""
        if self._interrupt is not None:
            coro.close()
            return None
        seg = asyncio.get_running_loop().create_task(coro)
        self._segment = seg
        try:
            await asyncio.wait([seg])
        finally:
            if not seg.done():
                seg.cancel()
                await asyncio.wait([seg])
            self._segment = None
        if seg.cancelled():
            return None
        return seg.result()

    def _end_by(self, intr: Interrupt) -> None:
        out = self.transcript.outcome
        if intr.abandoned:
            out.abandoned = True
        if self.status == CallStatus.IN_PROGRESS:
            self._finish(intr.reason)
        else:
            out.hangup_reason = intr.reason
            self.set_status(CallStatus.CANCELED)

    def _finish(self, reason: str, status: CallStatus | None = None) -> None:
        out = self.transcript.outcome
        if out.hangup_reason is None:
            out.hangup_reason = reason
        if self.status in TERMINAL:
            return
        if status is None:
            status = (
                CallStatus.COMPLETED
                if self.status == CallStatus.IN_PROGRESS
                else CallStatus.CANCELED
                if self.direction == "inbound"
                else CallStatus.FAILED
            )
        self.set_status(status)

    # ------------------------------------------------------------ records

    def record_error(self, item: DebuggerEntry) -> None:
        self.emu.errors.append(item)
        self.transcript.errors.append(item.to_json())

    def heard(self, item: Heard) -> None:
        if self.transcript.steps:
            self.transcript.steps[-1].heard.append(item)

    def resource(self) -> dict[str, object]:
        """The Call resource as Twilio's REST API returns it."""
        base = f"/{API_VERSION}/Accounts/{self.emu.account_sid}/Calls/{self.sid}"
        duration = str(int(round(self.duration_s()))) if self.status in TERMINAL else None
        return {
            "account_sid": self.emu.account_sid,
            "annotation": None,
            "answered_by": self.answered_by,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": rfc2822(self.created),
            "date_updated": rfc2822(self.updated),
            "direction": self.direction,
            "duration": duration,
            "end_time": rfc2822(self.end_time) if self.end_time else None,
            "forwarded_from": None,
            "from": self.setup.from_,
            "from_formatted": self.setup.from_,
            "group_sid": None,
            "parent_call_sid": self.setup.parent_call_sid,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": self.sid,
            "start_time": rfc2822(self.start_time) if self.start_time else None,
            "status": self.status.value,
            "subresource_uris": {
                "recordings": f"{base}/Recordings.json",
                "notifications": f"{base}/Notifications.json",
            },
            "to": self.setup.to,
            "to_formatted": self.setup.to,
            "trunk_sid": None,
            "uri": f"{base}.json",
        }

