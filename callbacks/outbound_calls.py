"""Webhooks of the outbound calls the scheduler places (`callbacks.twilio_dialer`).

  POST /voice/outbound?job=&kind=        the customer (or a machine) answered
  POST /voice/outbound/dialed?job=       <Dial action> of a follow-up bridged to its agent
  POST /voice/outbound/whisper?job=      what the assigned agent hears before the bridge
  POST /voice/outbound/status?job=       status callbacks -> Scheduler.on_call_status

A survey job runs the keypad survey (`callbacks.survey_calls`) about the call it follows.
A care or complaint follow-up (and a queue callback scheduled through the API) greets the
customer and bridges them: to the job's assigned agent with a <Dial> when it names one,
else (or when that agent does not answer) into the care queue with priority, through the
queue router and the same <Enqueue waitUrl> hold loop as inbound calls. An answering
machine hears the short message when the job kind's policy says `message`; otherwise the
call ends at once and the status callback (AnsweredBy machine_*) lets the scheduler retry
or give up. Every handler is signature-checked (`ivr.http.twilio_webhook`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from urllib.parse import urlencode

from aiohttp import web
from twilio.twiml.voice_response import VoiceResponse

from callbacks.appkeys import CALLBACKS, SCHEDULER
from callbacks.jobs import Job, JobKind
from callbacks.survey_calls import SurveyCall, start_survey
from config.calling import MachinePolicy
from config.logs import mask_phone
from ivr.appkeys import FLOW_DEPS, ROUTER
from ivr.engine import Say
from ivr.http import twilio_webhook, twiml
from ivr.twilio_params import BadRequestParams, parse_call, parse_status
from ivr.twiml import Renderer, hold_in_queue
from queueing.store import QueueError

log = logging.getLogger("hotline.callbacks.outbound")

CARE_PRIORITY = 8  # care follow-ups go ahead of ordinary callers (0..9; VIP rules may add)
FINAL_DIAL_OK = frozenset({"completed", "answered"})
_JOB_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def _job_id(request: web.Request) -> str:
    job_id = request.query.get("job", "")
    if not _JOB_ID.match(job_id):
        raise BadRequestParams("query parameter 'job' is missing or malformed")
    return job_id


def is_machine(answered_by: str | None) -> bool:
    by = (answered_by or "").strip().lower()
    return by.startswith("machine") or by == "fax"


def _language(request: web.Request, job: Job) -> str:
    flow = request.app[FLOW_DEPS].flow
    survey = request.app[CALLBACKS].survey_config
    lang = job.language or survey.default_language
    return lang if lang in flow.languages else flow.default_language


def _hangup(r: Renderer, text: str | None = None, lang: str = "") -> str:
    response = VoiceResponse()
    if text:
        r.speak(response, Say(text, lang))
    response.hangup()
    return str(response)


def care_queue_for(request: web.Request, job: Job) -> str:
    """The job's queue when the router knows it, else the configured care queue, else the
    router's default queue (a configuration mismatch must not drop the customer)."""
    config = request.app[ROUTER].store.config
    care = request.app[CALLBACKS].calling.care_queue
    for candidate in (job.queue, care):
        if candidate and candidate in config.queues:
            return candidate
    return config.default_queue or next(iter(config.queues))


async def join_care_queue(
    request: web.Request, job: Job, call_sid: str, lang: str, response: VoiceResponse
) -> str:
    """Queue the answered follow-up with priority; the router pairs it with an agent."""
    deps = request.app[FLOW_DEPS]
    router = request.app[ROUTER]
    queue = care_queue_for(request, job)
    attributes = {"care": "1"}
    if job.kind is JobKind.COMPLAINT_FOLLOW_UP:
        attributes["complaint"] = "1"
    priority = max(CARE_PRIORITY, router.store.priority_for(queue, attributes))
    info = {
        "lang": lang,
        "reason": f"care follow-up: {job.reason}" if job.reason else "care follow-up",
        "vip": False,
        "caller": job.phone,
        "followup": job.id,
        "case": job.case_id or "",
    }
    try:
        result = await router.join(
            call_sid, queue, priority=min(9, priority), attributes=attributes, info=info
        )
    except QueueError as exc:
        log.warning(
            "follow-up could not join the care queue",
            extra={"job_id": job.id, "queue": queue, "error": exc.code},
        )
        flow = deps.flow
        text = flow.message("busy", lang) or flow.message("goodbye", lang)
        return _hangup(deps.renderer, text, lang)
    log.info(
        "follow-up joined the care queue",
        extra={"job_id": job.id, "call_sid": call_sid, "queue": queue, "position": result.position},
    )
    hold_in_queue(response, deps.renderer, queue, lang)
    return str(response)


def dial_assigned_agent(
    r: Renderer, job: Job, address: str, lang: str, ring_s: float, response: VoiceResponse
) -> str:
    """Bridge to the job's agent; the <Dial action> queues the customer if nobody answers."""
    query = urlencode({"job": job.id})
    dial = response.dial(
        action=f"{r.base_url}/voice/outbound/dialed?{query}",
        method="POST",
        timeout=max(5, round(ring_s)),
        answer_on_bridge=True,
    )
    whisper = f"{r.base_url}/voice/outbound/whisper?{query}"
    if address.startswith("client:"):
        dial.client(address.removeprefix("client:"), url=whisper, method="POST")
    else:
        dial.number(address, url=whisper, method="POST")
    return str(response)


async def follow_up(request: web.Request, job: Job, call_sid: str, lang: str) -> str:
    deps = request.app[FLOW_DEPS]
    response = VoiceResponse()
    deps.renderer.speak(response, Say(deps.flow.message("callback_greeting", lang), lang))
    config = request.app[ROUTER].store.config
    agent = config.agents.get(job.agent) if job.agent else None
    if agent is not None and agent.address:
        log.info("follow-up bridged to its agent", extra={"job_id": job.id, "agent": agent.id})
        return dial_assigned_agent(
            deps.renderer, job, agent.address, lang, config.routing.ring_timeout_s, response
        )
    return await join_care_queue(request, job, call_sid, lang, response)


# --- webhooks ----------------------------------------------------------------------------
@twilio_webhook
async def outbound_voice(request: web.Request, params: Mapping[str, str]) -> web.Response:
    deps = request.app[FLOW_DEPS]
    service = request.app[CALLBACKS]
    call = parse_call(params)
    job = await service.store.get(_job_id(request))
    if job is None:
        log.warning("outbound call for an unknown job", extra={"call_sid": call.call_sid})
        return twiml(_hangup(deps.renderer))
    lang = _language(request, job)
    answered_by = params.get("AnsweredBy")
    extra = {"job_id": job.id, "call_sid": call.call_sid, "to": mask_phone(job.phone)}
    if is_machine(answered_by):
        policy = service.calling.retry_for(job.kind.value).on_machine
        log.info(
            "answering machine", extra={**extra, "answered_by": answered_by, "policy": policy.value}
        )
        if policy is MachinePolicy.MESSAGE:
            return twiml(_hangup(deps.renderer, service.calling.machine_message_for(lang), lang))
        return twiml(_hangup(deps.renderer))
    log.info("outbound call answered", extra={**extra, "kind": job.kind.value})
    if job.kind is JobKind.SURVEY:
        prompts = service.survey_config.prompts_for(job.language)
        survey = SurveyCall(
            surveyed=job.origin_call_sid or call.call_sid,
            lang=prompts.language,
            queue=job.queue,
            agent=job.agent,
            job=job.id,
        )
        return twiml(start_survey(deps.renderer, prompts, survey))
    return twiml(await follow_up(request, job, call.call_sid, lang))


@twilio_webhook
async def outbound_dialed(request: web.Request, params: Mapping[str, str]) -> web.Response:
    """The assigned agent's leg ended: goodbye after a conversation, else the care queue."""
    deps = request.app[FLOW_DEPS]
    call = parse_call(params)
    job = await request.app[CALLBACKS].store.get(_job_id(request))
    if job is None:
        return twiml(_hangup(deps.renderer))
    lang = _language(request, job)
    outcome = params.get("DialCallStatus", "")
    if outcome in FINAL_DIAL_OK:
        return twiml(_hangup(deps.renderer, deps.flow.message("goodbye", lang), lang))
    log.info(
        "assigned agent not reached; follow-up goes to the care queue",
        extra={"job_id": job.id, "dial_status": outcome},
    )
    return twiml(await join_care_queue(request, job, call.call_sid, lang, VoiceResponse()))


@twilio_webhook
async def outbound_whisper(request: web.Request, params: Mapping[str, str]) -> web.Response:
    job = await request.app[CALLBACKS].store.get(_job_id(request))
    response = VoiceResponse()
    if job is not None:
        kind = "Complaint follow-up" if job.kind is JobKind.COMPLAINT_FOLLOW_UP else "Care call"
        text = f"{kind}." + (f" Reason: {job.reason}." if job.reason else "")
        response.say(text, language="en-US")
    return twiml(str(response))


@twilio_webhook
async def outbound_status(request: web.Request, params: Mapping[str, str]) -> web.Response:
    """Status callbacks of scheduler calls: final ones settle the job's attempt."""
    event = parse_status(params)
    _job_id(request)
    job = await request.app[SCHEDULER].on_call_status(
        event.call.call_sid, event.call.call_status, params.get("AnsweredBy") or None
    )
    if job is not None:
        log.info(
            "outbound call settled",
            extra={
                "job_id": job.id,
                "call_sid": event.call.call_sid,
                "status": event.call.call_status,
                "state": job.state.value,
                "outcome": job.outcome,
            },
        )
    return web.Response(status=204)


def outbound_routes() -> list[web.RouteDef]:
    return [
        web.post("/voice/outbound", outbound_voice),
        web.post("/voice/outbound/dialed", outbound_dialed),
        web.post("/voice/outbound/whisper", outbound_whisper),
        web.post("/voice/outbound/status", outbound_status),
    ]
