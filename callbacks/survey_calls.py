"""Satisfaction surveys by keypad over Twilio: in the same call after the agent hangs up,
or in an outbound survey call placed by the scheduler.

Questions (config/surveys.yaml, in the caller's language): a 1..5 score, "was your
problem solved" (1 yes, 2 no), then an optional recorded comment.

Once only, without a session: what the survey has learnt so far (the surveyed call, its
queue, agent and language, the score) travels in the action URLs of the TwiML we answer
with. Twilio signs the URL it requests, so a request that passed the signature check
carries exactly the state we wrote. A retried request recomputes the same TwiML, and the
answers are written once, keyed by the surveyed call (`CallbackService.record_survey`
refuses a second survey of the same call). The answers are stored when the "solved"
question is answered (or left unanswered twice), before the comment is offered, so a
poor score opens its care case at once; the comment's recording is attached afterwards.
A caller who hangs up before answering "solved" leaves no survey (Twilio requests no
action for a hang-up in a <Gather>).

The AFTER_CALL hook (`AfterCallSurvey`) also closes the complaint loop: a call that came
through the complaint menu option (its queue-join info carries the flag and reason) opens
a complaint case with its 24 h follow-up when the agent hangs up, whatever the survey.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError
from twilio.twiml.voice_response import VoiceResponse

from callbacks.appkeys import CALLBACKS
from callbacks.cases import CaseKind
from callbacks.phone import is_e164
from callbacks.surveys_store import SurveyAnswer
from config.logs import mask_phone
from config.surveys import SurveyMode, SurveyPrompts
from ivr.appkeys import FLOW_DEPS, ROUTER
from ivr.engine import Say
from ivr.http import twilio_webhook, twiml
from ivr.twilio_params import BadRequestParams, CallInfo, parse_gather, parse_record
from ivr.twiml import Renderer

log = logging.getLogger("hotline.callbacks.survey")

SCORE_TRIES = 2  # asks of the score question before giving up (no answer recorded)
SOLVED_TRIES = 2  # asks of the solved question before recording it as unknown
GATHER_TIMEOUT_S = 6
COMMENT_SILENCE_S = 5
SCORE_KEYS = frozenset("12345")
SOLVED_KEYS = {"1": True, "2": False}

_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")

# url (, lang=) -> text, or an awaitable of it; None: not transcribed
Transcribe = Callable[..., Any]


# --- the state carried in the action URLs ----------------------------------------------
@dataclass(frozen=True)
class SurveyCall:
    surveyed: str  # the CallSid of the agent call being rated
    lang: str
    queue: str | None = None
    agent: str | None = None
    complaint: bool = False
    job: str | None = None  # the outbound survey job, if this is an outbound survey call

    def query(self, **extra: str | int) -> dict[str, str | int]:
        q: dict[str, str | int] = {"sv": self.surveyed, "lang": self.lang}
        if self.queue:
            q["q"] = self.queue
        if self.agent:
            q["a"] = self.agent
        if self.complaint:
            q["c"] = 1
        if self.job:
            q["job"] = self.job
        q.update(extra)
        return q

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> SurveyCall:
        surveyed = query.get("sv", "")
        if not _SID.match(surveyed):
            raise BadRequestParams("query parameter 'sv' is missing or malformed")

        def name(key: str) -> str | None:
            value = query.get(key)
            if value is None or value == "":
                return None
            if not _NAME.match(value):
                raise BadRequestParams(f"query parameter {key!r} is malformed")
            return value

        return cls(
            surveyed=surveyed,
            lang=name("lang") or "",
            queue=name("q"),
            agent=name("a"),
            complaint=query.get("c") == "1",
            job=name("job"),
        )


def _small_int(query: Mapping[str, str], key: str, high: int) -> int:
    raw = query.get(key, "0")
    if not raw.isdigit() or int(raw) > high:
        raise BadRequestParams(f"query parameter {key!r} is malformed")
    return int(raw)


# --- TwiML (pure) ------------------------------------------------------------------------
def _say(r: Renderer, target: Any, text: str | None, lang: str) -> None:
    if text:
        r.speak(target, Say(text, lang))


def ask_score(
    r: Renderer,
    prompts: SurveyPrompts,
    call: SurveyCall,
    *,
    tries: int = 0,
    intro: bool = True,
    before: str | None = None,
) -> str:
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf",
        num_digits=1,
        timeout=GATHER_TIMEOUT_S,
        action=r.url("/survey/score", **call.query(t=tries)),
        method="POST",
        action_on_empty_result=True,
    )
    _say(r, gather, before, prompts.language)
    if intro:
        _say(r, gather, prompts.intro, prompts.language)
    _say(r, gather, prompts.score, prompts.language)
    return str(response)


def ask_solved(
    r: Renderer,
    prompts: SurveyPrompts,
    call: SurveyCall,
    score: int,
    *,
    tries: int = 0,
    before: str | None = None,
) -> str:
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf",
        num_digits=1,
        timeout=GATHER_TIMEOUT_S,
        action=r.url("/survey/solved", **call.query(score=score, t=tries)),
        method="POST",
        action_on_empty_result=True,
    )
    _say(r, gather, before, prompts.language)
    _say(r, gather, prompts.solved, prompts.language)
    return str(response)


def thanks(r: Renderer, prompts: SurveyPrompts) -> str:
    response = VoiceResponse()
    _say(r, response, prompts.thanks, prompts.language)
    response.hangup()
    return str(response)


def goodbye(r: Renderer, text: str, lang: str) -> str:
    response = VoiceResponse()
    _say(r, response, text, lang)
    response.hangup()
    return str(response)


def offer_comment(r: Renderer, prompts: SurveyPrompts, call: SurveyCall, max_s: int) -> str:
    """The comment prompt and a <Record>; nothing said falls through to the thanks."""
    if not prompts.comment:
        return thanks(r, prompts)
    response = VoiceResponse()
    _say(r, response, prompts.comment, prompts.language)
    response.record(
        action=r.url("/survey/comment", **call.query()),
        method="POST",
        max_length=max_s,
        finish_on_key="#",
        play_beep=True,
        timeout=COMMENT_SILENCE_S,
    )
    _say(r, response, prompts.thanks, prompts.language)
    response.hangup()
    return str(response)


def start_survey(r: Renderer, prompts: SurveyPrompts, call: SurveyCall) -> str:
    return ask_score(r, prompts, call, intro=True)


# --- helpers shared by the handlers ------------------------------------------------------
def customer_number(call: CallInfo) -> str | None:
    """The customer's number: the caller of an inbound call, the callee of ours."""
    number = call.to_number if call.direction.startswith("outbound") else call.from_number
    return number if is_e164(number) else None


def _context(request: web.Request) -> tuple[Renderer, SurveyPrompts, SurveyCall]:
    call = SurveyCall.from_query(request.query)
    prompts = request.app[CALLBACKS].survey_config.prompts_for(call.lang or None)
    return request.app[FLOW_DEPS].renderer, prompts, call


def _retry_message(request: web.Request, lang: str, digits: str | None) -> str:
    flow = request.app[FLOW_DEPS].flow
    return flow.message("invalid" if digits else "no_input", lang)


# --- background transcription of comments -------------------------------------------------
class CommentTranscriber:
    """Transcribes recorded comments off the request path and stores the text with the
    answer. `transcribe` defaults to `ivr.voice.transcribe_recording(url, lang=)` (offline
    vosk, resolved at each comment so the speech service can come and go); it is given
    the survey's language when it takes `lang`. Without it, or when it returns None (no
    model for the language, no capacity), the comment keeps only its recording URL."""

    def __init__(self, transcribe: Transcribe | None = None) -> None:
        self.transcribe = transcribe  # None: ivr.voice.transcribe_recording, if it exists
        self._tasks: set[asyncio.Task[None]] = set()

    def resolve(self) -> Transcribe | None:
        if self.transcribe is not None:
            return self.transcribe
        try:
            # by name: the speech work owns ivr.voice; no import-time dependency on it
            voice = importlib.import_module("ivr.voice")
        except Exception:  # absent, or broken mid-edit: comments keep their recording
            log.warning("ivr.voice not importable; comment not transcribed", exc_info=True)
            return None
        found = getattr(voice, "transcribe_recording", None)
        return found if callable(found) else None

    def submit(self, app: web.Application, surveyed: str, url: str, lang: str) -> bool:
        transcribe = self.resolve()
        if transcribe is None:
            return False
        task = asyncio.create_task(self._run(app, transcribe, surveyed, url, lang))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _run(
        self, app: web.Application, transcribe: Transcribe, surveyed: str, url: str, lang: str
    ) -> None:
        try:
            takes_lang = "lang" in inspect.signature(transcribe).parameters
            args: dict[str, str] = {"lang": lang} if takes_lang else {}
            if inspect.iscoroutinefunction(transcribe):
                text = await transcribe(url, **args)
            else:
                text = await asyncio.to_thread(transcribe, url, **args)
                if inspect.isawaitable(text):
                    text = await text
        except Exception:
            log.exception("comment transcription failed", extra={"call_sid": surveyed})
            return
        if isinstance(text, str) and text.strip():
            await app[CALLBACKS].surveys.add_comment(surveyed, text=text.strip())
            log.info("comment transcribed", extra={"call_sid": surveyed})
        else:
            log.info(
                "comment not transcribed (no model or nothing heard)", extra={"call_sid": surveyed}
            )

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.drain()


TRANSCRIBER = web.AppKey("callbacks.comment_transcriber", CommentTranscriber)


# --- webhooks ----------------------------------------------------------------------------
@twilio_webhook
async def score_answer(request: web.Request, params: Mapping[str, str]) -> web.Response:
    r, prompts, call = _context(request)
    tries = _small_int(request.query, "t", SCORE_TRIES)
    digits = parse_gather(params).digits
    if digits in SCORE_KEYS:
        return twiml(ask_solved(r, prompts, call, int(digits or "0")))
    if tries + 1 < SCORE_TRIES:
        before = _retry_message(request, prompts.language, digits)
        return twiml(ask_score(r, prompts, call, tries=tries + 1, intro=False, before=before))
    log.info("survey declined: no score", extra={"call_sid": call.surveyed})
    # No feedback given: the ordinary goodbye, not "thank you for your feedback".
    lang = prompts.language
    return twiml(goodbye(r, request.app[FLOW_DEPS].flow.message("goodbye", lang), lang))


@twilio_webhook
async def solved_answer(request: web.Request, params: Mapping[str, str]) -> web.Response:
    r, prompts, call = _context(request)
    tries = _small_int(request.query, "t", SOLVED_TRIES)
    score = _small_int(request.query, "score", 5)
    if score < 1:
        raise BadRequestParams("query parameter 'score' is malformed")
    gather = parse_gather(params)
    digits = gather.digits
    if digits not in SOLVED_KEYS and tries + 1 < SOLVED_TRIES:
        before = _retry_message(request, prompts.language, digits)
        return twiml(ask_solved(r, prompts, call, score, tries=tries + 1, before=before))
    solved = SOLVED_KEYS.get(digits or "")
    service = request.app[CALLBACKS]
    answer = SurveyAnswer(
        call_sid=call.surveyed,
        answered_ms=await service.store.now_ms(),
        score=score,
        solved=solved,
        queue=call.queue,
        agent=call.agent,
        language=prompts.language,
        phone=customer_number(gather.call),
        complaint=call.complaint,
    )
    try:
        result = await service.record_survey(answer)
    except (RedisError, OSError, TimeoutError) as exc:
        # The caller is not sent to the emergency path for a survey: thank and log.
        log.error(
            "survey answer NOT stored: %s",
            type(exc).__name__,
            extra={"call_sid": call.surveyed, "score": score, "solved": solved},
        )
        return twiml(thanks(r, prompts))
    log.info(
        "survey answered",
        extra={
            "call_sid": call.surveyed,
            "survey_call_sid": gather.call.call_sid,
            "queue": call.queue,
            "agent": call.agent,
            "score": score,
            "solved": solved,
            "first_report": result.recorded,
            "case_id": result.case.id if result.case else None,
        },
    )
    return twiml(offer_comment(r, prompts, call, service.survey_config.comment_max_seconds))


@twilio_webhook
async def comment_answer(request: web.Request, params: Mapping[str, str]) -> web.Response:
    r, prompts, call = _context(request)
    record = parse_record(params)
    if record.recording_url:
        try:
            stored = await request.app[CALLBACKS].surveys.add_comment(
                call.surveyed, url=record.recording_url
            )
        except (RedisError, OSError, TimeoutError) as exc:
            log.error(
                "survey comment NOT stored: %s; recover it from the recording",
                type(exc).__name__,
                extra={"call_sid": call.surveyed, "recording_url": record.recording_url},
            )
            return twiml(thanks(r, prompts))
        queued = stored and request.app[TRANSCRIBER].submit(
            request.app, call.surveyed, record.recording_url, prompts.language
        )
        log.info(
            "survey comment recorded",
            extra={
                "call_sid": call.surveyed,
                "duration_s": record.duration_s,
                "stored": stored,
                "transcribing": queued,
            },
        )
    return twiml(thanks(r, prompts))


# --- the AFTER_CALL hook -----------------------------------------------------------------
def is_complaint(info: Mapping[str, Any]) -> bool:
    """The queue-join info of a call that came through the complaint menu option."""
    attributes = info.get("attributes")
    flagged = isinstance(attributes, dict) and attributes.get("complaint") == "1"
    return flagged or info.get("reason") == "complaint"


class AfterCallSurvey:
    """`ivr.appkeys.AFTER_CALL`: what follows an agent call. Same-call queues get the
    survey's TwiML; outbound-mode queues get an outbound survey scheduled (None: goodbye);
    a complaint call opens its care case. Never raises: a failure here ends the call with
    the usual goodbye rather than the emergency path."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    async def __call__(
        self, *, call_sid: str, queue: str, agent_id: str | None, lang: str
    ) -> str | None:
        try:
            return await self._after(call_sid, queue, agent_id, lang)
        except Exception:
            log.exception("after-call survey failed", extra={"call_sid": call_sid})
            return None

    async def _after(
        self, call_sid: str, queue: str, agent_id: str | None, lang: str
    ) -> str | None:
        service = self.app[CALLBACKS]
        status = await self.app[ROUTER].store.call_status(call_sid)
        info: Mapping[str, Any] = status.info if status else {}
        if info.get("followup"):
            return None  # a care follow-up we placed: no survey of the survey loop
        caller = str(info.get("caller") or "")
        phone = caller if is_e164(caller) else None
        complaint = is_complaint(info)
        if complaint and phone:
            case, job = await service.open_case(
                kind=CaseKind.COMPLAINT,
                phone=phone,
                call_sid=call_sid,
                queue=queue or None,
                agent=agent_id,
                language=lang,
                note=f"complaint call handled in queue {queue}",
            )
            log.info(
                "complaint case opened",
                extra={"call_sid": call_sid, "case_id": case.id, "job_id": job.id if job else None},
            )
        mode = service.survey_config.mode_for(queue or None)
        if mode is SurveyMode.SAME_CALL:
            prompts = service.survey_config.prompts_for(lang)
            call = SurveyCall(
                surveyed=call_sid,
                lang=prompts.language,
                queue=queue or None,
                agent=agent_id,
                complaint=complaint,
            )
            return start_survey(self.app[FLOW_DEPS].renderer, prompts, call)
        if mode is SurveyMode.OUTBOUND and phone:
            job = await service.schedule_survey(
                call_sid=call_sid, phone=phone, queue=queue or None, agent=agent_id, language=lang
            )
            log.info(
                "outbound survey scheduled" if job else "outbound survey not scheduled",
                extra={"call_sid": call_sid, "to": mask_phone(phone)},
            )
        return None


def survey_routes() -> list[web.RouteDef]:
    return [
        web.post("/survey/score", score_answer),
        web.post("/survey/solved", solved_answer),
        web.post("/survey/comment", comment_answer),
    ]


async def transcriber_context(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: background transcriptions are cancelled when the app stops."""
    try:
        yield
    finally:
        await app[TRANSCRIBER].aclose()
