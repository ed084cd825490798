"""Twilio's webhooks: /voice, /ivr/{node}, /status, /fallback, plus health checks.

Signature checks and the never-a-500 rule live in `ivr.http.twilio_webhook`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

from aiohttp import web
from redis.exceptions import RedisError

from config.logs import mask_phone
from config.runtime import KEYS, REDIS, SETTINGS
from ivr import engine, queue_twiml
from ivr.accounts import Customer
from ivr.appkeys import ACCOUNTS, FLOW_DEPS, SESSIONS
from ivr.care import add_voice_message
from ivr.engine import (
    ActionDone,
    AuthChecked,
    CheckPin,
    Digits,
    Enter,
    Event,
    LookedUp,
    Lookup,
    NoInput,
    Recorded,
    RunAction,
    Session,
    Step,
    Transfer,
)
from ivr.flowdeps import FlowDeps
from ivr.http import fallback, twilio_webhook, twiml
from ivr.queue_calls import join_queue
from ivr.sessions import NEW_CALL
from ivr.twilio_params import (
    BadRequestParams,
    parse_call,
    parse_gather,
    parse_record,
    parse_status,
)
from queueing.store import QueueFull

log = logging.getLogger("hotline.ivr")

ENDED_MARK_TTL_S = 2 * 86400
OUTCOME_RETENTION_S = 400 * 86400


# --- running the flow --------------------------------------------------------------------
async def resolve(request: web.Request, deps: FlowDeps, session: Session, event: Event) -> Step:
    """Step the engine, performing the I/O it asks for (PIN check, self-service lookups)."""
    now = datetime.now(UTC)
    ctx = engine.Context(queue_open=lambda queue: deps.queue_open(queue, now))
    result = engine.step(deps.flow, session, event, ctx)
    for _ in range(4):
        pending = result.pending
        if pending is None:
            return result
        follow_up: Event
        if isinstance(pending, CheckPin):
            customer = await check_pin(request, session.call_sid, pending)
            follow_up = AuthChecked(
                ok=customer is not None,
                customer_id=customer.customer_id if customer else None,
                vip=bool(customer and customer.vip),
            )
        elif isinstance(pending, Lookup):
            reference = await request.app[ACCOUNTS].lookup(pending.digits)
            follow_up = LookedUp(reference)
        elif isinstance(pending, RunAction):
            follow_up = await run_action(request, pending)
        result = engine.step(deps.flow, result.session, follow_up, ctx)
    raise engine.FlowError("the flow asked for I/O more than 4 times in one step")


AUTH_MAX_FAILURES = 5  # wrong PINs per account reference, across calls, before a lock
AUTH_LOCK_S = 3600


async def check_pin(request: web.Request, call_sid: str, pending: CheckPin) -> Customer | None:
    """Verify a PIN unless the account is locked by repeated failures (counted across calls)."""
    redis = request.app[REDIS]
    key = request.app[KEYS].auth_failures(pending.account)
    failures = int(await redis.get(key) or 0)
    if failures >= AUTH_MAX_FAILURES:
        log.warning("pin check refused: account locked", extra={"call_sid": call_sid})
        return None
    customer = await request.app[ACCOUNTS].verify(pending.account, pending.pin)
    if customer is None:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, nx=True, ex=AUTH_LOCK_S)  # the lock window starts at the first failure
            pipe.incr(key)
            await pipe.execute()
    log.info("pin check", extra={"call_sid": call_sid, "ok": customer is not None})
    return customer


QUEUE_FULL_FLAG = "queue_full"


async def perform_transfers(request: web.Request, result: Step) -> Step:
    """Join the queue before answering; joining is idempotent, so a Twilio retry is harmless.

    A queue at capacity (`max_waiting`) refuses the call: the step comes back marked
    `queue_full` and ended, and is answered with the busy message (see `render_step`).
    """
    for verb in result.verbs:
        if isinstance(verb, Transfer):
            try:
                await join_queue(request, result.session, verb)
            except QueueFull as exc:
                log.warning(
                    "queue full: caller gets the busy message",
                    extra={"call_sid": result.session.call_sid, "queue": exc.details.get("queue")},
                )
                session = replace(
                    result.session, ended=True, flags=result.session.flags | {QUEUE_FULL_FLAG}
                )
                return replace(result, session=session)
    return result


def render_step(deps: FlowDeps, result: Step) -> str:
    if QUEUE_FULL_FLAG in result.session.flags and result.session.ended:
        return queue_twiml.busy(deps.renderer, result.session.lang)
    return deps.renderer.render(result)


CURRENCY_NAMES = {
    "CNY": {"zh": "元", "en": "yuan", "ko": "위안"},
    "KRW": {"zh": "韩元", "en": "won", "ko": "원"},
    "USD": {"zh": "美元", "en": "US dollars", "ko": "달러"},
}


async def run_action(request: web.Request, pending: RunAction) -> ActionDone:
    if pending.name == "balance" and pending.customer_id:
        balance = await request.app[ACCOUNTS].balance(pending.customer_id)
        if balance is None:
            return ActionDone(ok=False)
        names = CURRENCY_NAMES.get(balance.currency, {})
        values = {"amount": f"{balance.amount:,.2f}", "currency": balance.currency}
        for lang in ("zh", "en", "ko"):
            values[f"currency_{lang}"] = names.get(lang, balance.currency)
        return ActionDone(ok=True, values=values)
    return ActionDone(ok=False)


async def answer_step(
    request: web.Request,
    deps: FlowDeps,
    expected_seq: int,
    session: Session,
    event: Event,
) -> web.Response:
    """Run one step, store it once, perform its effects, and answer with its TwiML."""
    result = await perform_transfers(request, await resolve(request, deps, session, event))
    moved = replace(result.session, seq=expected_seq + 1)
    body = render_step(deps, replace(result, session=moved))
    applied, cached = await request.app[SESSIONS].advance(expected_seq, moved, body)
    if not applied:
        log.info(
            "duplicate webhook answered from the stored step", extra={"call_sid": session.call_sid}
        )
        if cached is not None:
            return twiml(cached)
        return fallback(deps, session.lang)
    for effect in result.effects:
        try:
            entry = await add_voice_message(
                request.app[REDIS],
                request.app[KEYS],
                call_sid=session.call_sid,
                caller=session.caller,
                lang=effect.lang,
                recording_url=effect.recording_url,
                duration_s=effect.duration_s,
                flags=effect.flags,
            )
            log.info(
                "voice message stored for the care team",
                extra={"call_sid": session.call_sid, "task": entry},
            )
        except (RedisError, OSError):
            log.error(
                "voice message NOT stored; recover it from the recording",
                extra={"call_sid": session.call_sid, "recording_url": effect.recording_url},
            )
    log.info(
        "step",
        extra={
            "call_sid": session.call_sid,
            "from_node": session.node,
            "node": moved.node,
            "seq": moved.seq,
            "lang": moved.lang,
        },
    )
    return twiml(body)


# --- handlers ----------------------------------------------------------------------------
@twilio_webhook
async def voice(request: web.Request, params: Mapping[str, str]) -> web.Response:
    deps = request.app[FLOW_DEPS]
    call = parse_call(params)
    sessions = request.app[SESSIONS]
    session = engine.new_session(deps.flow, call.call_sid, call.from_number, call.to_number)
    first = pure_first_step(deps, session)
    if first is None:
        # the first step does I/O (a PIN check, a queue join...): never twice for a repeat
        stored = await sessions.load(call.call_sid)
        if stored is not None:
            return await repeated_voice(request, deps, call.call_sid, stored.session.lang)
        first = await perform_transfers(request, await resolve(request, deps, session, Enter()))
    # The first answer is step 0; its action URLs carry s=0.
    body = render_step(deps, first)
    applied, cached = await sessions.advance(NEW_CALL, first.session, body)
    if not applied:
        log.info("repeated /voice answered from the stored step", extra={"call_sid": call.call_sid})
        return twiml(cached) if cached else fallback(deps, session.lang)
    log.info(
        "incoming call",
        extra={
            "call_sid": call.call_sid,
            "from": mask_phone(call.from_number),
            "direction": call.direction,
        },
    )
    return twiml(body)


def pure_first_step(deps: FlowDeps, session: Session) -> Step | None:
    """The first step when it asks for no I/O and has no effect (no transfer, no care
    task): computing it for a repeated /voice is then harmless, so the session need not
    be read first. None: load the session first."""
    now = datetime.now(UTC)
    ctx = engine.Context(queue_open=lambda queue: deps.queue_open(queue, now))
    result = engine.step(deps.flow, session, Enter(), ctx)
    if result.pending is not None or result.effects:
        return None
    if any(isinstance(verb, Transfer) for verb in result.verbs):
        return None
    return result


async def repeated_voice(
    request: web.Request, deps: FlowDeps, call_sid: str, lang: str
) -> web.Response:
    cached = await request.app[SESSIONS].answer_for(call_sid, 0)
    log.info("repeated /voice answered from the stored step", extra={"call_sid": call_sid})
    return twiml(cached) if cached else fallback(deps, lang)


def step_number(request: web.Request) -> int:
    """The step number `s` an answer's action URL carries (see ivr.sessions)."""
    raw = request.query.get("s", "")
    if not raw.isdigit() or len(raw) > 6:
        raise BadRequestParams("step number 's' is missing or malformed")
    return int(raw)


async def session_at_step(
    request: web.Request, call_sid: str, node_id: str, seq: int
) -> Session | web.Response:
    """The call's session if it is still at step `seq` on `node_id`; otherwise the answer
    Twilio gets instead: the one already stored for that step (a retry), or the fallback."""
    deps = request.app[FLOW_DEPS]
    sessions = request.app[SESSIONS]
    stored = await sessions.load(call_sid)
    if stored is None:
        log.warning("no session for call (expired or lost)", extra={"call_sid": call_sid})
        return fallback(deps)
    if stored.seq == seq and stored.session.node == node_id:
        return stored.session
    log.info(
        "stale or repeated webhook",
        extra={"call_sid": call_sid, "seq": seq, "current": stored.seq, "node": node_id},
    )
    cached = await sessions.answer_for(call_sid, seq + 1)
    return twiml(cached) if cached is not None else fallback(deps, stored.session.lang)


@twilio_webhook
async def ivr_node(request: web.Request, params: Mapping[str, str]) -> web.Response:
    deps = request.app[FLOW_DEPS]
    node_id = request.match_info["node"]
    seq = step_number(request)
    node = deps.flow.nodes.get(node_id)
    if node is None:
        raise BadRequestParams(f"unknown node {node_id!r}")
    call = parse_call(params)
    session = await session_at_step(request, call.call_sid, node_id, seq)
    if isinstance(session, web.Response):
        return session
    event: Event
    if node.kind.value == "record":
        record = parse_record(params)
        event = Recorded(record.recording_url, record.duration_s)
    else:
        gather = parse_gather(params)
        event = Digits(gather.digits) if gather.digits else NoInput()
    return await answer_step(request, deps, seq, session, event)


@twilio_webhook
async def status(request: web.Request, params: Mapping[str, str]) -> web.Response:
    """Status callbacks: record once how each call ended."""
    event = parse_status(params)
    call = event.call
    if call.call_status not in {"completed", "busy", "failed", "no-answer", "canceled"}:
        return web.Response(status=204)
    redis = request.app[REDIS]
    keys = request.app[KEYS]
    stored = await request.app[SESSIONS].load(call.call_sid)
    outcome = classify_outcome(
        stored.session if stored else None, request.app[FLOW_DEPS], call.call_status
    )
    first = await redis.set(keys.call_ended(call.call_sid), outcome, nx=True, ex=ENDED_MARK_TTL_S)
    if first:
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        async with redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(keys.call_outcomes(day), outcome, 1)
            pipe.expire(keys.call_outcomes(day), OUTCOME_RETENTION_S)
            await pipe.execute()
    log.info(
        "call ended",
        extra={
            "call_sid": call.call_sid,
            "outcome": outcome,
            "status": call.call_status,
            "duration_s": event.duration_s,
            "first_report": bool(first),
        },
    )
    return web.Response(status=204)


def classify_outcome(session: Session | None, deps: FlowDeps, call_status: str) -> str:
    if call_status != "completed":
        return f"not_connected_{call_status.replace('-', '_')}"
    if session is None:
        return "unknown"
    if QUEUE_FULL_FLAG in session.flags:
        return "refused_busy"
    node = deps.flow.nodes.get(session.node)
    kind = node.kind.value if node else ""
    if kind == "transfer":
        return "transferred"
    if kind == "record":
        return "abandoned_in_menu"
    if session.ended:
        return (
            "message_left"
            if any(
                deps.flow.nodes[p].kind.value == "record"
                for p in session.path
                if p in deps.flow.nodes
            )
            else "self_service"
        )
    return "abandoned_in_menu"


@twilio_webhook
async def twilio_fallback(request: web.Request, params: Mapping[str, str]) -> web.Response:
    """Twilio's fallback URL: the primary failed or timed out; serve the caller regardless."""
    log.error(
        "twilio used the fallback URL",
        extra={
            "call_sid": params.get("CallSid", ""),
            "error_code": params.get("ErrorCode", ""),
            "error_url": params.get("ErrorUrl", ""),
        },
    )
    return fallback(request.app[FLOW_DEPS])


async def healthz(_request: web.Request) -> web.Response:
    # pid: which process answered (hotline serve --workers N runs several on one port)
    return web.json_response({"status": "ok", "time": int(time.time()), "pid": os.getpid()})


async def readyz(request: web.Request) -> web.Response:
    try:
        await asyncio.wait_for(request.app[REDIS].ping(), timeout=1.0)
    except (TimeoutError, RedisError, OSError) as exc:
        return web.json_response({"status": "unavailable", "redis": type(exc).__name__}, status=503)
    settings = request.app[SETTINGS]
    return web.json_response({"status": "ready", "redis": "ok", "public_url": settings.base_url})


def routes() -> list[web.RouteDef]:
    return [
        web.post("/voice", voice),
        web.post("/ivr/{node}", ivr_node),
        web.post("/status", status),
        web.post("/fallback", twilio_fallback),
        web.get("/healthz", healthz),
        web.get("/readyz", readyz),
    ]
