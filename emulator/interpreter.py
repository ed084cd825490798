"""Runs TwiML verbs for one call, the way Twilio does.

Every wait goes through the emulator's clock (divided by the speed-up). What the party
hears and does is written into the call's transcript, one `Step` per document.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urljoin

from emulator import twiml as t
from emulator.audio import make_wav, playable_duration_s
from emulator.calls import Call
from emulator.errors import APPLICATION_ERROR_SPEECH, TwimlError, entry
from emulator.flow import End, Fetch, Inline, Interrupt, Next
from emulator.parties import AgentLeg, AgentPhone, CallerScript, sample
from emulator.queues import Bridge, CallQueue, QueueMember
from emulator.state import TERMINAL, CallStatus, StatusCallbacks
from emulator.transcript import Heard, Step

log = logging.getLogger("hotline.emulator")

LEAVE = "__leave__"
MAX_REDIRECTS_IN_WHISPER = 5


def say_seconds(text: str) -> float:
    """About how long a TTS voice takes to speak `text`: 15 characters a second for
    alphabetic scripts, 6 for syllabic/ideographic ones (Hangul, kana, Han)."""
    wide = sum(1 for ch in text if ord(ch) >= 0x1100)
    return max(0.5, (len(text) - wide) / 15.0 + wide / 6.0)


def resolve(url: str | None, base: str | None) -> str | None:
    if not url:
        return None
    return urljoin(base or "", url)


class Interpreter:
    def __init__(self, call: Call) -> None:
        self.call = call
        self.emu = call.emu
        self.clock = call.emu.clock

    # ================================================================ documents

    def _step(self, node: str, method: str, verbs: tuple[t.Verb, ...] = ()) -> Step:
        step = Step(node=node, method=method, verbs=[t.verb_name(v) for v in verbs])
        self.call.transcript.steps.append(step)
        return step

    def _record(self, exc: TwimlError, url: str | None) -> None:
        self.call.record_error(entry(exc.code, call_sid=self.call.sid, url=url, detail=exc.detail))

    async def _load(self, nxt: Next) -> tuple[t.Document | None, str | None, str]:
        """Fetch or parse the next document; on failure try the fallback URL (with
        ErrorCode and ErrorUrl), as Twilio does. (None, url, method) if nothing worked."""
        call = self.call
        if isinstance(nxt, Inline):
            try:
                return t.parse_twiml(nxt.twiml), nxt.base_url, "TWIML"
            except TwimlError as exc:
                self._record(exc, None)
                return None, None, "TWIML"
        params = call.base_params()
        params.update(dict(nxt.params))
        try:
            fetched = await self.emu.webhooks.fetch_document(nxt.url, nxt.method, params)
        except TwimlError as exc:
            self._record(exc, nxt.url)
            fallback = call.setup.fallback_url
            if not fallback:
                return None, nxt.url, nxt.method
            params.update({"ErrorCode": str(exc.code), "ErrorUrl": nxt.url})
            call.used_fallback = True
            try:
                fetched = await self.emu.webhooks.fetch_document(
                    fallback, call.setup.fallback_method, params
                )
            except TwimlError as exc2:
                self._record(exc2, fallback)
                return None, fallback, call.setup.fallback_method
        for warning in fetched.document.warnings:
            call.record_error(
                entry(warning.code, call_sid=call.sid, url=fetched.url, detail=warning.detail)
            )
        return fetched.document, fetched.url, fetched.method

    def _answer_if_ringing(self) -> None:
        if self.call.status in (CallStatus.RINGING, CallStatus.QUEUED):
            self.call.set_status(CallStatus.IN_PROGRESS)

    async def run_next(self, nxt: Next) -> Next | End | None:
        doc, url, method = await self._load(nxt)
        node = url or "twiml"
        if doc is None:
            self._step(node, method)
            self._answer_if_ringing()
            return self.application_error()
        step = self._step(node, method, doc.verbs)
        if url:
            self.call.document_url = url
        if self.call.status == CallStatus.RINGING:
            if doc.verbs and isinstance(doc.verbs[0], t.Reject):
                return self.reject(doc.verbs[0], step)
            self._answer_if_ringing()
        result = await self.run_verbs(doc.verbs, url, step)
        if result is None:
            return End("end-of-twiml")
        return result

    def application_error(self) -> End:
        self.call.heard(Heard(kind="system", text=APPLICATION_ERROR_SPEECH, language="en-US"))
        return End("application-error")

    def reject(self, verb: t.Reject, step: Step) -> End:
        """Twilio: a first-verb <Reject> never answers; the call ends `busy` for
        reason="busy" and `no-answer` for "rejected". Later in a call it just hangs up."""
        step.input.append(f"reject:{verb.reason}")
        self.call.transcript.outcome.hangup_reason = f"rejected:{verb.reason}"
        if self.call.status in (CallStatus.RINGING, CallStatus.QUEUED):
            self.call.set_status(
                CallStatus.BUSY if verb.reason == "busy" else CallStatus.NO_ANSWER
            )
        return End(f"rejected:{verb.reason}")

    async def run_verbs(
        self, verbs: tuple[t.Verb, ...], base: str | None, step: Step, *, waiting: bool = False
    ) -> Next | End | None:
        """Run verbs in order; a Next or End stops the document, None means it ran out."""
        for verb in verbs:
            result = await self.run_verb(verb, base, step, waiting=waiting)
            if result is not None:
                return result
        return None

    async def run_verb(
        self, verb: t.Verb, base: str | None, step: Step, *, waiting: bool = False
    ) -> Next | End | None:
        if isinstance(verb, t.Say):
            await self.say(verb)
        elif isinstance(verb, t.Play):
            await self.play(verb, base)
        elif isinstance(verb, t.Pause):
            await self.clock.sleep(verb.length)
        elif isinstance(verb, t.Gather):
            return await self.gather(verb, base, step)
        elif isinstance(verb, t.Redirect):
            url = resolve(verb.url, base)
            if url is None:
                return None
            return Fetch(url, verb.method)
        elif isinstance(verb, t.Hangup):
            return End("hangup-verb")
        elif isinstance(verb, t.Reject):
            return self.reject(verb, step)
        elif isinstance(verb, t.Leave):
            return End(LEAVE) if waiting else None
        elif waiting:
            self.call.record_error(
                entry(12200, call_sid=self.call.sid, url=base,
                      detail=f"<{t.verb_name(verb)}> is not allowed in a waitUrl document")
            )
        elif isinstance(verb, t.Enqueue):
            return await self.enqueue(verb, base, step)
        elif isinstance(verb, t.Dial):
            return await self.dial(verb, base, step)
        elif isinstance(verb, t.Record):
            return await self.record(verb, base, step)
        elif isinstance(verb, t.Connect):
            return await self.connect(verb, base, step)
        elif isinstance(verb, t.Start):
            if verb.stream is not None:
                from emulator.streams import start_fork

                start_fork(self.call, verb.stream, base, step)
        elif isinstance(verb, t.Stop):
            for name, stop in self.call.stop_streams.items():
                if verb.stream_name in (None, name):
                    stop.set()
        return None

    # ================================================================ simple verbs

    async def say(self, verb: t.Say) -> None:
        loops = verb.loop if verb.loop > 0 else 1000
        for _ in range(loops):
            self.call.heard(Heard(kind="say", text=verb.text, language=verb.language))
            await self.clock.sleep(say_seconds(verb.text))

    async def play(self, verb: t.Play, base: str | None, *, in_gather: bool = False) -> bool:
        if verb.digits and not verb.url:  # DTMF tones played into the call
            self.call.heard(Heard(kind="tone", text=verb.digits, ms=100 * len(verb.digits)))
            await self.clock.sleep(0.1 * len(verb.digits))
            return True
        url = resolve(verb.url, base) or ""
        seconds = self.emu.media_cache.get(url)
        if seconds is None:
            try:
                status, ctype, body = await self.emu.webhooks.get_media(url)
            except TwimlError as exc:
                self._record(exc, url)
                return False
            if not 200 <= status < 300:
                self._record(TwimlError(11200, f"HTTP {status}"), url)
                return False
            seconds = playable_duration_s(ctype, body)
            if seconds is None:
                code = 13325 if in_gather else 13420
                self._record(TwimlError(code, f"Content-Type {ctype!r}"), url)
                return False
            self.emu.media_cache[url] = seconds
        loops = verb.loop if verb.loop > 0 else 1000
        for _ in range(loops):
            self.call.heard(Heard(kind="play", url=url, ms=int(seconds * 1000)))
            await self.clock.sleep(seconds)
        return True

    # ================================================================ Gather

    async def gather(self, verb: t.Gather, base: str | None, step: Step) -> Next | End | None:
        for prompt in verb.prompts:
            if isinstance(prompt, t.Say):
                await self.say(prompt)
            elif isinstance(prompt, t.Play):
                await self.play(prompt, base, in_gather=True)
            else:
                await self.clock.sleep(prompt.length)
        entry_ = self.call.next_press()
        script = self.call.script
        params: dict[str, str] = {}
        if entry_ and entry_.startswith("speech:") and "speech" in verb.input:
            text = entry_[len("speech:"):]
            await self.clock.sleep(say_seconds(text))
            step.input.append(entry_)
            params = {"SpeechResult": text, "Confidence": "0.9"}
        elif entry_ and "dtmf" in verb.input and not entry_.startswith("speech:"):
            digits = ""
            finished = False
            for key in entry_:
                if verb.finish_on_key and key == verb.finish_on_key:
                    finished = True
                    break
                digits += key
                if verb.num_digits and len(digits) >= verb.num_digits:
                    finished = True
                    break
            typed = len(digits) + (1 if finished and len(digits) < len(entry_) else 0)
            await self.clock.sleep(script.press_seconds * max(1, typed))
            if not finished:
                await self.clock.sleep(verb.timeout)
            step.input.append(f"dtmf:{entry_}")
            if digits:
                params = {"Digits": digits}
                if finished and verb.finish_on_key and verb.finish_on_key in entry_:
                    params["FinishedOnKey"] = verb.finish_on_key
        else:
            await self.clock.sleep(verb.timeout)
            step.input.append("timeout")
        action = resolve(verb.action, base) or base
        if params:
            return Fetch(action, verb.method, tuple(params.items())) if action else None
        if verb.action_on_empty_result and action:
            return Fetch(action, verb.method, (("Digits", ""),))
        return None

    # ================================================================ Record

    async def record(self, verb: t.Record, base: str | None, step: Step) -> Next | End | None:
        if verb.play_beep:
            self.call.heard(Heard(kind="tone", text="beep", ms=500))
            await self.clock.sleep(0.5)
        spoken = min(sample(self.call.script.record_seconds) or 0.0, float(verb.max_length))
        if spoken <= 0:
            await self.clock.sleep(verb.timeout)
            step.input.append("record:silence")
            return None  # Twilio makes no action request for an empty recording
        await self.clock.sleep(spoken)
        if spoken < verb.max_length:
            await self.clock.sleep(min(verb.timeout, 5))
        rec_sid = self.emu.new_sid("RE")
        self.emu.recordings[rec_sid] = make_wav(spoken, tone_hz=440.0)
        rec_url = self.emu.recording_url(rec_sid)
        step.input.append(f"record:{spoken:g}s")
        action = resolve(verb.action, base) or base
        params = (
            ("RecordingUrl", rec_url),
            ("RecordingSid", rec_sid),
            ("RecordingDuration", str(int(round(spoken)))),
        )
        return Fetch(action, verb.method, params) if action else None

    # ================================================================ Enqueue

    def _queue_params(
        self, queue_sid: str, enqueued_at: float, left_at: float | None = None
    ) -> dict[str, str]:
        """QueueSid and QueueTime: the seconds spent waiting (not talking) in the queue."""
        end = self.clock.elapsed() if left_at is None else left_at
        return {"QueueSid": queue_sid, "QueueTime": str(int(end - enqueued_at))}

    async def enqueue(self, verb: t.Enqueue, base: str | None, step: Step) -> Next | End | None:
        call = self.call
        queue = self.emu.queue(verb.name or "default")
        action = resolve(verb.action, base)
        member = queue.join(call.sid, self.clock)
        if member is None:
            step.input.append(f"queue-full:{queue.name}")
            if action:
                return Fetch(action, verb.method, (("QueueResult", "queue-full"),))
            return None
        call.transcript.outcome.queued = True
        step.input.append(f"enqueued:{queue.name}")
        patience = sample(call.script.patience)
        timer = (
            call.after(patience, lambda: call.hangup("caller-hangup", abandoned=True))
            if patience is not None
            else None
        )
        bridged_flag = False
        left_at: float | None = None

        def on_interrupt(intr: Interrupt) -> Fetch | None:
            queue.leave(member)
            if intr.kind == "hangup" and intr.reason == "caller-hangup" and not bridged_flag:
                call.transcript.outcome.abandoned = True
            if not action:
                return None
            result = "bridged" if bridged_flag else (
                "hangup" if intr.kind == "hangup" else "redirected"
            )
            params = {
                "QueueResult": result,
                **self._queue_params(queue.sid, member.enqueued_at, left_at),
            }
            if intr.kind == "hangup":
                params["CallStatus"] = CallStatus.COMPLETED.value
            return Fetch(action, verb.method, tuple(params.items()))

        call.on_interrupt = on_interrupt
        wait_task = asyncio.get_running_loop().create_task(
            self._wait_loop(verb, queue, member, base)
        )
        try:
            waitables: list[asyncio.Future[Any]] = [wait_task, member.bridged]
            await asyncio.wait(waitables, return_when=asyncio.FIRST_COMPLETED)
            if member.bridged.done():
                bridged_flag = True
                left_at = self.clock.elapsed()
                if timer is not None:
                    timer.cancel()
                wait_task.cancel()
                await asyncio.wait([wait_task])
                bridge = member.bridged.result()
                call.transcript.outcome.answered_by = bridge.other_address
                self._step(f"bridge:{bridge.other_address}", "BRIDGE")
                if bridge.whisper is not None:
                    await self._play_to_self(bridge.whisper)
                bridge.started.set()
                try:
                    await bridge.ended.wait()
                finally:
                    bridge.end("caller-hangup")
                result, nxt = "bridged", None
            else:
                result, nxt = wait_task.result()
        finally:
            queue.leave(member)
            if timer is not None:
                timer.cancel()
            if not wait_task.done():
                wait_task.cancel()
                await asyncio.wait([wait_task])
        call.on_interrupt = None
        params = {
            "QueueResult": result,
            **self._queue_params(queue.sid, member.enqueued_at, left_at),
        }
        if result in {"bridged", "leave"}:
            return Fetch(action, verb.method, tuple(params.items())) if action else None
        if action:  # redirected out of the queue, or hung up by the wait TwiML
            await self.notify_action(Fetch(action, verb.method, tuple(params.items())))
        return nxt

    async def _wait_loop(
        self, verb: t.Enqueue, queue: CallQueue, member: QueueMember, base: str | None
    ) -> tuple[str, Next | End | None]:
        queue_sid = queue.sid
        while True:
            began = self.clock.elapsed()
            if not verb.wait_url:
                self._step("hold-music", "GET")
                self.call.heard(Heard(kind="play", url="hold-music", ms=30000))
                await self.clock.sleep(30)
                continue
            url = resolve(verb.wait_url, base) or verb.wait_url
            params = self.call.base_params()
            params.update(
                {
                    "QueuePosition": str(queue.position(self.call.sid)),
                    "QueueSid": queue_sid,
                    "QueueTime": str(int(self.clock.elapsed() - member.enqueued_at)),
                    "AvgQueueTime": str(queue.average_wait(self.clock)),
                    "CurrentQueueSize": str(len(queue.members)),
                    "MaxQueueSize": str(queue.max_size),
                }
            )
            try:
                fetched = await self.emu.webhooks.fetch_document(
                    url, verb.wait_url_method, params
                )
            except TwimlError as exc:
                self._record(exc, url)
                self._step(url, verb.wait_url_method)
                await self.clock.sleep(10)
                continue
            step = self._step(fetched.url, fetched.method, fetched.document.verbs)
            result = await self.run_verbs(fetched.document.verbs, fetched.url, step, waiting=True)
            if isinstance(result, End):
                if result.reason == LEAVE:
                    return "leave", None
                return "hangup", result
            if result is not None:
                return "redirected", result
            if self.clock.elapsed() - began < 1.0:
                await self.clock.sleep(1.0)

    async def _play_to_self(self, nxt: Fetch) -> None:
        """A <Queue url> announcement, played to the dequeued caller before bridging."""
        try:
            fetched = await self.emu.webhooks.fetch_document(
                nxt.url, nxt.method, {**self.call.base_params(), **dict(nxt.params)}
            )
        except TwimlError as exc:
            self._record(exc, nxt.url)
            return
        step = self._step(fetched.url, fetched.method, fetched.document.verbs)
        for verb in fetched.document.verbs:
            if isinstance(verb, t.Say | t.Play | t.Pause):
                await self.run_verb(verb, fetched.url, step)

    async def notify_action(self, nxt: Fetch) -> None:
        """Request an action URL whose TwiML will not run (the call moved on or ended)."""
        params = self.call.base_params()
        params.update(dict(nxt.params))
        await self.emu.webhooks.notify(nxt.url, nxt.method, params)

    # ================================================================ Dial

    async def dial(self, verb: t.Dial, base: str | None, step: Step) -> Next | End | None:
        queues = [x for x in verb.targets if isinstance(x, t.DialQueue)]
        if queues:
            status, dial_sid, talk, extra = await self._dial_queue(verb, queues[0], base, step)
        else:
            status, dial_sid, talk, extra = await self._dial_phones(verb, base, step)
        step.input.append(f"dial:{status}")
        action = resolve(verb.action, base)
        params = {"DialCallStatus": status, **extra}
        if dial_sid:
            params["DialCallSid"] = dial_sid
        if status == "completed":
            params["DialCallDuration"] = str(int(round(talk)))
        if action:
            return Fetch(action, verb.method, tuple(params.items()))
        return None

    async def _dial_phones(
        self, verb: t.Dial, base: str | None, step: Step
    ) -> tuple[str, str | None, float, dict[str, str]]:
        call = self.call
        candidates: list[tuple[t.DialNumber | t.DialClient, AgentPhone]] = []
        busy = False
        for target in verb.targets:
            if isinstance(target, t.DialQueue):
                continue
            phone = self.emu.find_phone(target)
            if phone is None:
                continue
            if phone.busy or phone.active >= phone.max_calls:
                busy = True
                phone.legs.append(AgentLeg(self.emu.new_sid("CA"), call.sid, "busy"))
                continue
            candidates.append((target, phone))
        if not candidates:
            await self.clock.sleep(0.5 if busy else 0.0)
            return ("busy" if busy else "failed"), None, 0.0, {}
        ring = [(sample(p.answer_after), tgt, p) for tgt, p in candidates]
        answering = [(d, tgt, p) for d, tgt, p in ring if d is not None and d <= verb.timeout]
        child_sid = self.emu.new_sid("CA")
        if not answering:
            for _, _, p in ring:
                p.legs.append(AgentLeg(child_sid, call.sid, "no-answer"))
            await self.clock.sleep(verb.timeout)
            return "no-answer", child_sid, 0.0, {}
        delay, target, phone = min(answering, key=lambda x: x[0])
        phone.active += 1
        leg = AgentLeg(child_sid, call.sid, "ringing")
        phone.legs.append(leg)
        leg_callbacks = StatusCallbacks(
            self.emu.webhooks,
            self.clock,
            resolve(target.status_callback, base),
            "POST",
            target.status_callback_event,
            on_sent=lambda cb, st: self.emu.callback_log.append((cb, st)),
        )
        leg_params = {
            "AccountSid": self.emu.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": child_sid,
            "ParentCallSid": call.sid,
            "Direction": "outbound-dial",
            "From": call.setup.from_,
            "To": phone.address,
            "Called": phone.address,
            "Caller": call.setup.from_,
        }
        talk_started: float | None = None
        hung_up_by_caller = True

        def leg_status(event: str, status: str, **extra: str) -> None:
            leg_callbacks.emit(event, {**leg_params, "CallStatus": status, **extra})

        def on_interrupt(intr: Interrupt) -> Fetch | None:
            action = resolve(verb.action, base)
            if not action:
                return None
            talked = 0.0 if talk_started is None else self.clock.elapsed() - talk_started
            params = {
                "DialCallStatus": "completed" if talk_started is not None else "canceled",
                "DialCallSid": child_sid,
                "DialCallDuration": str(int(round(talked))),
            }
            if intr.kind == "hangup":
                params["CallStatus"] = CallStatus.COMPLETED.value
            return Fetch(action, verb.method, tuple(params.items()))

        call.on_interrupt = on_interrupt
        try:
            leg_status("initiated", "initiated")
            leg_status("ringing", "ringing")
            await self.clock.sleep(delay)
            leg.outcome = "answered"
            leg_status("answered", "in-progress")
            if target.url:
                whispered = await self._whisper(
                    Fetch(resolve(target.url, base) or target.url, target.method),
                    {**leg_params, "CallStatus": "in-progress"},
                    leg,
                    phone,
                )
                if not whispered:
                    leg.outcome = "whisper-hangup"
                    call.on_interrupt = None
                    hung_up_by_caller = False
                    return "no-answer", child_sid, 0.0, {}
            call.transcript.outcome.answered_by = phone.address
            self._step(f"bridge:{phone.address}", "BRIDGE")
            talk_started = self.clock.elapsed()
            handle = sample(phone.handle_time) or 0.0
            await self.clock.sleep(min(handle, float(verb.time_limit)))
            hung_up_by_caller = False
            call.on_interrupt = None
            return "completed", child_sid, self.clock.elapsed() - talk_started, {}
        finally:
            phone.active -= 1
            if talk_started is not None:
                leg.talk_s = self.clock.elapsed() - talk_started
            if hung_up_by_caller and leg.outcome == "ringing":
                leg.outcome = "canceled"  # the caller hung up while the agent's phone rang
            duration = str(int(round(leg.talk_s)))
            end_status = "canceled" if leg.outcome == "canceled" else "completed"
            leg_status("completed", end_status, CallDuration=duration)
            drain = asyncio.get_running_loop().create_task(leg_callbacks.drain())
            call.background.add(drain)
            drain.add_done_callback(call.background.discard)

    async def _whisper(
        self, nxt: Fetch, params: dict[str, str], leg: AgentLeg, phone: AgentPhone
    ) -> bool:
        """Run the <Number url>/<Client url> TwiML on the agent's leg (Say, Play, Pause,
        Gather with the phone's `whisper_keys`, Redirect); False if it hung up."""
        for _ in range(MAX_REDIRECTS_IN_WHISPER):
            try:
                fetched = await self.emu.webhooks.fetch_document(
                    nxt.url, nxt.method, {**params, **dict(nxt.params)}
                )
            except TwimlError as exc:
                self._record(exc, nxt.url)
                return False
            follow: Fetch | None = None
            for verb in fetched.document.verbs:
                if isinstance(verb, t.Say):
                    leg.whisper.append(verb.text)
                    await self.clock.sleep(say_seconds(verb.text) * max(1, verb.loop))
                elif isinstance(verb, t.Play):
                    leg.whisper.append(f"play:{resolve(verb.url, fetched.url)}")
                    await self.clock.sleep(1.0)
                elif isinstance(verb, t.Pause):
                    await self.clock.sleep(verb.length)
                elif isinstance(verb, t.Gather):
                    for prompt in verb.prompts:
                        if isinstance(prompt, t.Say):
                            leg.whisper.append(prompt.text)
                            await self.clock.sleep(say_seconds(prompt.text))
                    keys = phone.whisper_keys
                    if keys:
                        await self.clock.sleep(self.call.script.press_seconds * len(keys))
                        action = resolve(verb.action, fetched.url) or fetched.url
                        follow = Fetch(action, verb.method, (("Digits", keys.rstrip("#")),))
                        break
                    await self.clock.sleep(verb.timeout)
                elif isinstance(verb, t.Hangup | t.Reject):
                    return False
                elif isinstance(verb, t.Redirect):
                    follow = Fetch(resolve(verb.url, fetched.url) or verb.url, verb.method)
                    break
            if follow is None:
                return True
            nxt = follow
        return True

    async def _dial_queue(
        self, verb: t.Dial, target: t.DialQueue, base: str | None, step: Step
    ) -> tuple[str, str | None, float, dict[str, str]]:
        call = self.call
        queue = self.emu.queue(target.name)
        member = queue.take_first()
        if member is None:
            waiter: asyncio.Future[QueueMember] = asyncio.get_running_loop().create_future()
            queue.waiting_dequeuers.append(waiter)
            try:
                member = await asyncio.wait_for(
                    asyncio.shield(waiter), self.clock.real(float(verb.timeout))
                )
            except TimeoutError:
                return "no-answer", None, 0.0, {"QueueSid": queue.sid}
            finally:
                if waiter in queue.waiting_dequeuers:
                    queue.waiting_dequeuers.remove(waiter)
        assert member is not None
        whisper = (
            Fetch(
                resolve(target.url, base) or target.url,
                target.method,
                (
                    ("QueueSid", queue.sid),
                    ("DequeingCallSid", call.sid),
                    ("QueueTime", str(int(self.clock.elapsed() - member.enqueued_at))),
                ),
            )
            if target.url
            else None
        )
        address = call.setup.to if call.direction != "inbound" else call.setup.from_
        bridge = Bridge(other_sid=call.sid, other_address=address, whisper=whisper)
        member.bridged.set_result(bridge)
        call.transcript.outcome.answered_by = f"queue:{queue.name}"
        self._step(f"bridge:{member.call_sid}", "BRIDGE")
        try:
            began = asyncio.get_running_loop().create_task(bridge.started.wait())
            gone = asyncio.get_running_loop().create_task(bridge.ended.wait())
            try:
                await asyncio.wait([began, gone], return_when=asyncio.FIRST_COMPLETED)
            finally:
                began.cancel()
                gone.cancel()
            if bridge.ended.is_set():  # the caller left during the announcement
                return "completed", member.call_sid, 0.0, {"QueueSid": queue.sid}
            started = self.clock.elapsed()
            talk = sample(call.script.talk_time)
            ended = asyncio.get_running_loop().create_task(bridge.ended.wait())
            try:
                await asyncio.wait([ended], timeout=None if talk is None else self.clock.real(talk))
            finally:
                ended.cancel()
            return "completed", member.call_sid, self.clock.elapsed() - started, {
                "QueueSid": queue.sid
            }
        finally:
            bridge.end("dequeuer-hangup")

    # ================================================================ Connect

    async def connect(self, verb: t.Connect, base: str | None, step: Step) -> Next | End | None:
        if verb.stream is None:
            return None
        from emulator.streams import run_connect

        reason = await run_connect(self.call, verb.stream, base, step)
        if reason == "caller-hangup":
            return End("caller-hangup")
        action = resolve(verb.action, base)
        if action:
            return Fetch(action, verb.method)
        return None

    # ================================================================ outbound

    async def dial_out(self) -> End:
        """Ring the far end of an outbound-api call; End('answered') if it picks up."""
        call = self.call
        far = call.setup.far_end
        params = call.base_params()
        params["CallStatus"] = "initiated"
        call.callbacks.emit("initiated", params)
        call.set_status(CallStatus.RINGING)
        timeout = call.setup.ring_timeout
        outcome: CallStatus | None = None
        if isinstance(far, AgentPhone):
            if far.busy or far.active >= far.max_calls:
                await self.clock.sleep(0.5)
                outcome = CallStatus.BUSY
            else:
                delay = sample(far.answer_after)
                if delay is None or delay > timeout:
                    await self.clock.sleep(timeout)
                    outcome = CallStatus.NO_ANSWER
                else:
                    await self.clock.sleep(delay)
            if outcome is None:
                far.legs.append(AgentLeg(call.sid, None, "answered"))
                far.active += 1
                phone = far

                def release() -> None:
                    phone.active -= 1

                call.on_end.append(release)
        elif far is not None:
            kind = far.answer
            if kind == "busy":
                await self.clock.sleep(0.5)
                outcome = CallStatus.BUSY
            elif kind == "failed":
                outcome = CallStatus.FAILED
            elif kind == "no-answer":
                await self.clock.sleep(timeout)
                outcome = CallStatus.NO_ANSWER
            else:
                delay = sample(far.answer_after) or 0.0
                if delay > timeout:
                    await self.clock.sleep(timeout)
                    outcome = CallStatus.NO_ANSWER
                else:
                    await self.clock.sleep(delay)
                    if call.setup.machine_detection:
                        call.answered_by = answered_by(kind, call.setup.machine_detection)
        if outcome is not None:
            call.transcript.outcome.hangup_reason = outcome.value
            call.set_status(outcome)
            return End(outcome.value)
        if call.status in TERMINAL:
            return End(call.status.value)
        call.set_status(CallStatus.IN_PROGRESS)
        if call.answered_by:
            call.transcript.outcome.answered_by = call.answered_by
        return End("answered")


def answered_by(kind: str, machine_detection: str) -> str:
    """AnsweredBy for MachineDetection=Enable or DetectMessageEnd."""
    if kind == "human":
        return "human"
    if kind == "fax":
        return "fax"
    if kind == "machine":
        return "machine_end_beep" if machine_detection == "DetectMessageEnd" else "machine_start"
    return "unknown"


def agent_script(phone: AgentPhone) -> CallerScript:
    """An agent answering an outbound-api call talks for its handle time when bridged."""
    return CallerScript(talk_time=phone.handle_time)
