"""Webhooks of a call in a queue: hold loop, callback offer, agent whisper, dial result.

The router pairs calls and agents in Redis; these handlers tell it what Twilio saw
(agent answered, no answer, call finished) and keep the caller informed while waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from aiohttp import web
from redis.exceptions import RedisError

from config.logs import mask_phone
from ivr import queue_twiml
from ivr.appkeys import AFTER_CALL, FLOW_DEPS, ROUTER
from ivr.engine import Say, Session, Transfer
from ivr.http import fallback, twilio_webhook, twiml
from ivr.twilio_params import BadRequestParams, parse_call
from queueing.store import QueueError

log = logging.getLogger("hotline.ivr.queue")

FINAL_DIAL_OK = frozenset({"completed", "answered"})
# this process's hold documents (bounded; at most 1 s old, see HoldTwiml)
_HOLD_TWIML = queue_twiml.HoldTwiml()


class AfterCall(Protocol):
    async def __call__(
        self, *, call_sid: str, queue: str, agent_id: str | None, lang: str
    ) -> str | None:
        """TwiML to continue the caller's call with (a survey), or None to say goodbye."""
        ...


async def no_survey(*, call_sid: str, queue: str, agent_id: str | None, lang: str) -> str | None:
    return None


def _lang(request: web.Request) -> str:
    flow = request.app[FLOW_DEPS].flow
    lang = request.query.get("lang", flow.default_language)
    return lang if lang in flow.languages else flow.default_language


def _queue(request: web.Request) -> str:
    queue = request.query.get("q", "")
    if queue not in request.app[ROUTER].store.config.queues:
        raise BadRequestParams("query parameter 'q' names no queue")
    return queue


def _query_int(request: web.Request, name: str) -> int:
    raw = request.query.get(name, "")
    if not raw.isdigit() or len(raw) > 12:
        raise BadRequestParams(f"query parameter {name!r} is missing or malformed")
    return int(raw)


def _query_call(request: web.Request) -> str:
    sid = request.query.get("call", "")
    if not sid.startswith("CA") or len(sid) != 34:
        raise BadRequestParams("query parameter 'call' is missing or malformed")
    return sid


async def join_queue(request: web.Request, session: Session, transfer: Transfer) -> None:
    """Put the call in its queue (idempotent per CallSid); pairing may dispatch at once."""
    router = request.app[ROUTER]
    attributes = {flag: "1" for flag in transfer.flags}
    info = {
        "lang": session.lang,
        "reason": transfer.reason or "",
        "vip": "vip" in transfer.flags,
        "caller": session.caller,
        "line": session.line,
    }
    queue = transfer.queue
    if "vip" in transfer.flags and router.store.config.vip_queue:
        queue = router.store.config.vip_queue
    store_priority = router.store.priority_for(queue, attributes)
    result = await router.join(
        session.call_sid,
        queue,
        priority=max(transfer.priority, store_priority),
        attributes=attributes,
        info=info,
    )
    log.info(
        "joined queue",
        extra={
            "call_sid": session.call_sid,
            "queue": result.queue,
            "position": result.position,
            "state": result.state,
            "duplicate": result.duplicate,
        },
    )


@twilio_webhook
async def hold(request: web.Request, params: Mapping[str, str]) -> web.Response:
    deps = request.app[FLOW_DEPS]
    router = request.app[ROUTER]
    call = parse_call(params)
    lang = _lang(request)
    try:
        # the queue the waitUrl names: call record and position in one round trip
        info = await router.stats.wait_info(call.call_sid, request.query.get("q"))
    except (TimeoutError, RedisError, OSError) as exc:
        # Redis is away. The caller's place is kept (in Redis, and Twilio keeps the call
        # in its queue), so keep them on hold rather than the emergency path: <Dial> or
        # <Enqueue> are not valid in a waitUrl document, and leaving would lose the place.
        log.error(
            "redis unavailable; caller kept on hold: %s",
            type(exc).__name__,
            extra={"call_sid": call.call_sid},
        )
        held = router.store.config.queues.get(request.query.get("q", ""))
        if held is None:
            return twiml(queue_twiml.pause(5))
        return twiml(
            queue_twiml.hold(
                deps.renderer, held, lang, position=None, ewt_s=None, offer_callback=False
            )
        )
    if info is None:
        log.warning("hold loop for a call that is not queued", extra={"call_sid": call.call_sid})
        return _fallback(request, lang)
    queue = router.store.config.queues[info.queue]
    if info.state != "waiting":
        # Reserved or ringing: the redirect to the agent is on its way; keep the line quiet.
        return twiml(queue_twiml.pause(2))
    return twiml(
        _HOLD_TWIML.hold(
            deps.renderer,
            queue,
            lang,
            position=info.position,
            ewt_s=info.ewt_s,
            offer_callback=info.offer_callback,
        )
    )


def _fallback(request: web.Request, lang: str) -> web.Response:
    return fallback(request.app[FLOW_DEPS], lang)


@twilio_webhook
async def hold_key(request: web.Request, params: Mapping[str, str]) -> web.Response:
    """A key pressed during the hold announcement: 1 takes a callback that keeps the place."""
    deps = request.app[FLOW_DEPS]
    call = parse_call(params)
    lang = _lang(request)
    queue = _queue(request)
    if params.get("Digits") != queue_twiml.CALLBACK_KEY or not call.from_number:
        return twiml(queue_twiml.back_to_queue(deps.renderer, queue, lang))
    position = await request.app[ROUTER].take_callback(call.call_sid, call.from_number)
    if position is None:
        return twiml(queue_twiml.back_to_queue(deps.renderer, queue, lang))
    log.info(
        "callback taken, place kept",
        extra={"call_sid": call.call_sid, "position": position, "to": mask_phone(call.from_number)},
    )
    return twiml(queue_twiml.say_then(deps.renderer, lang, "callback_taken", hangup=True))


@twilio_webhook
async def left(request: web.Request, params: Mapping[str, str]) -> web.Response:
    """<Enqueue action>: the call left Twilio's holding queue."""
    call = parse_call(params)
    result = params.get("QueueResult", "")
    if result == "hangup":
        await caller_hung_up(request, call.call_sid)
        return twiml(queue_twiml.empty())
    if result in {"queue-full", "error", "system-error"}:
        log.error(
            "twilio could not hold the call",
            extra={"call_sid": call.call_sid, "queue_result": result},
        )
        return _fallback(request, _lang(request))
    return twiml(queue_twiml.empty())


@twilio_webhook
async def whisper(request: web.Request, params: Mapping[str, str]) -> web.Response:
    """The agent answered: confirm the reservation, then tell the agent who is calling."""
    router = request.app[ROUTER]
    call_sid = _query_call(request)
    reservation = _query_int(request, "res")
    try:
        await router.answer(call_sid, reservation)
    except QueueError as exc:
        log.warning(
            "agent answered a reservation that is gone; hanging up the agent leg",
            extra={"call_sid": call_sid, "error": exc.code},
        )
        return twiml(queue_twiml.hangup())
    status = await router.store.call_status(call_sid)
    text = queue_twiml.whisper_text(
        status.queue if status else request.query.get("q", ""),
        status.priority if status else 0,
        status.info if status else {},
        (router.store.now_ms() - status.joined_ms) / 1000 if status else 0.0,
    )
    return twiml(queue_twiml.whisper(text))


@twilio_webhook
async def dialed(request: web.Request, params: Mapping[str, str]) -> web.Response:
    """<Dial action>: the agent leg ended, or was never answered."""
    deps = request.app[FLOW_DEPS]
    router = request.app[ROUTER]
    call_sid = _query_call(request)
    reservation = _query_int(request, "res")
    lang = _lang(request)
    outcome = params.get("DialCallStatus", "")
    if outcome in FINAL_DIAL_OK:
        status = await router.store.call_status(call_sid)
        try:
            await router.complete(call_sid)
        except QueueError as exc:
            log.warning(
                "completing a call the queue no longer holds",
                extra={"call_sid": call_sid, "error": exc.code},
            )
        follow = await request.app[AFTER_CALL](
            call_sid=call_sid,
            queue=status.queue if status else request.query.get("q", ""),
            agent_id=status.agent_id if status else None,
            lang=lang,
        )
        if follow is not None:
            return twiml(follow)
        return twiml(queue_twiml.say_then(deps.renderer, lang, "goodbye", hangup=True))
    try:
        await router.no_answer(call_sid, reservation, party="agent")
    except QueueError as exc:
        log.warning(
            "no-answer for a reservation that is gone",
            extra={"call_sid": call_sid, "error": exc.code},
        )
    log.info(
        "agent did not answer; call back at the head of its queue",
        extra={"call_sid": call_sid, "dial_status": outcome},
    )
    return twiml(queue_twiml.back_to_queue(deps.renderer, _queue(request), lang))


@twilio_webhook
async def callback_answer(request: web.Request, params: Mapping[str, str]) -> web.Response:
    """The customer picked up the queue callback: greet them and dial the reserved agent."""
    from twilio.twiml.voice_response import VoiceResponse

    deps = request.app[FLOW_DEPS]
    router = request.app[ROUTER]
    call_sid = _query_call(request)
    reservation = _query_int(request, "res")
    lang = _lang(request)
    answered_by = params.get("AnsweredBy", "human")
    if answered_by.startswith("machine") or answered_by == "fax":
        await router.no_answer(call_sid, reservation, party="customer")
        return twiml(queue_twiml.hangup())
    status = await router.store.call_status(call_sid)
    if status is None or status.agent_id is None:
        return twiml(queue_twiml.say_then(deps.renderer, lang, "error", hangup=True))
    agent = router.store.config.agents.get(status.agent_id)
    greeting = VoiceResponse()
    deps.renderer.speak(greeting, _say(deps.flow.message("callback_greeting", lang), lang))
    return twiml(
        queue_twiml.dial_agent(
            deps.renderer.base_url,
            call_sid=call_sid,
            queue=status.queue,
            reservation=reservation,
            agent_address=agent.address if agent else "",
            ring_timeout_s=router.store.config.routing.ring_timeout_s,
            lang=lang,
            greeting=greeting,
        )
    )


def _say(text: str, lang: str) -> Say:
    return Say(text, lang)


@twilio_webhook
async def callback_status(request: web.Request, params: Mapping[str, str]) -> web.Response:
    """Status of the outbound callback leg: not reached means the callback goes back in line."""
    router = request.app[ROUTER]
    call_sid = _query_call(request)
    reservation = _query_int(request, "res")
    status = params.get("CallStatus", "")
    if status in {"busy", "no-answer", "failed", "canceled"}:
        try:
            await router.no_answer(call_sid, reservation, party="customer")
        except QueueError as exc:
            log.info(
                "callback leg ended for a reservation that is gone",
                extra={"call_sid": call_sid, "error": exc.code},
            )
        log.info("queue callback not reached", extra={"call_sid": call_sid, "status": status})
    return web.Response(status=204)


async def caller_hung_up(request: web.Request, call_sid: str) -> None:
    """Status callback for a call that had reached a queue: abandoned if still waiting."""
    router = request.app[ROUTER]
    status = await router.store.call_status(call_sid)
    if status is None or status.callback or status.state not in {"waiting", "reserved", "ringing"}:
        return
    try:
        result = await router.leave(call_sid, "abandoned")
    except QueueError as exc:
        log.info(
            "hang-up for a call no longer waiting", extra={"call_sid": call_sid, "error": exc.code}
        )
        return
    log.info("caller abandoned in queue", extra={"call_sid": call_sid, "state": result.state})


def routes() -> list[web.RouteDef]:
    return [
        web.post("/queue/hold", hold),
        web.post("/queue/hold/key", hold_key),
        web.post("/queue/left", left),
        web.post("/queue/whisper", whisper),
        web.post("/queue/dialed", dialed),
        web.post("/queue/callback/answer", callback_answer),
        web.post("/queue/callback/status", callback_status),
    ]
