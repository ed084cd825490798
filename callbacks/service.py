"""The callbacks service: what the care API, the IVR and the queues call.

Schedules callbacks inside the customer's calling window, schedules outbound surveys after
the queue's delay, records survey answers, and closes the loop: a score of 1-2, "not
solved" or a complaint opens a care case and a care follow-up due within 24 h.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from callbacks.cases import RESPONSE_TARGET_MS, Case, CaseKind, CaseStore
from callbacks.jobs import Job, JobKind, JobState, NewJob, dt_to_ms, ms_to_dt
from callbacks.store import CallbackStore
from callbacks.surveys_store import SurveyAnswer, SurveyStore
from callbacks.windows import customer_window, next_dial_time
from config.calling import CallingConfig
from config.logs import mask_phone
from config.surveys import SurveyConfig, SurveyMode

log = logging.getLogger("hotline.callbacks")

# An outbound survey that cannot be placed within this long after the call is dropped.
SURVEY_MAX_DELAY = timedelta(days=2)


class NoWindow(ValueError):
    """No moment inside the customer's calling window between not_before and not_after."""


class AgentOutcome(str, Enum):
    REACHED = "reached"
    NO_ANSWER = "no_answer"
    WRONG_NUMBER = "wrong_number"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class CallbackRequest:
    phone: str  # E.164, already validated
    kind: JobKind = JobKind.CARE_FOLLOW_UP
    not_before: datetime | None = None  # None: as soon as the window allows
    not_after: datetime | None = None
    queue: str | None = None
    agent: str | None = None
    language: str | None = None
    reason: str | None = None
    note: str | None = None
    timezone: str | None = None
    case_id: str | None = None
    origin_call_sid: str | None = None


@dataclass(frozen=True)
class SurveyResult:
    recorded: bool  # False: this call's survey was already recorded (nothing changed)
    case: Case | None = None
    follow_up: Job | None = None


class CallbackService:
    def __init__(
        self,
        store: CallbackStore,
        surveys: SurveyStore,
        cases: CaseStore,
        calling: CallingConfig,
        survey_config: SurveyConfig,
        known_queues: frozenset[str],
    ) -> None:
        self.store = store
        self.surveys = surveys
        self.cases = cases
        self.calling = calling
        self.survey_config = survey_config
        self.known_queues = known_queues

    # --- scheduling ---------------------------------------------------------------------
    async def first_dial_time(self, request: CallbackRequest, now: datetime) -> datetime:
        start = max(request.not_before or now, now)
        window = customer_window(request.phone, request.timezone, self.calling)
        when = next_dial_time(
            start,
            window,
            min_left=timedelta(seconds=self.calling.min_window_left_s),
            not_after=request.not_after,
        )
        if when is None:
            raise NoWindow("no calling-window time between not_before and not_after")
        return when

    async def schedule(self, request: CallbackRequest, *, job_id: str | None = None) -> Job:
        """Schedule a call at the first moment the window allows. Raises NoWindow, or
        StoreFull at the live-job bound; an existing `job_id` returns that job."""
        if job_id is not None:
            existing = await self.store.get(job_id)
            if existing is not None:
                return existing
        now = await self.store.now()
        due = await self.first_dial_time(request, now)
        new = NewJob(
            kind=request.kind,
            phone=request.phone,
            due_ms=dt_to_ms(due),
            not_after_ms=dt_to_ms(request.not_after) if request.not_after else None,
            timezone=request.timezone,
            queue=request.queue,
            agent=request.agent,
            language=request.language,
            reason=request.reason,
            note=request.note,
            case_id=request.case_id,
            origin_call_sid=request.origin_call_sid,
        )
        try:
            job = await self.store.create(new, job_id=job_id)
        except KeyError:
            found = await self.store.get(job_id or "")
            assert found is not None
            return found
        log.info(
            "callback scheduled",
            extra={"job_id": job.id, "kind": job.kind.value, "phone": mask_phone(job.phone)},
        )
        return job

    async def schedule_survey(
        self,
        *,
        call_sid: str,
        phone: str,
        queue: str | None,
        agent: str | None,
        language: str | None,
        ended_at: datetime | None = None,
    ) -> Job | None:
        """After an agent call: schedule the outbound survey if the queue's mode says so
        (None for same-call or no survey). Idempotent per call."""
        if self.survey_config.mode_for(queue) is not SurveyMode.OUTBOUND:
            return None
        ended = ended_at or await self.store.now()
        delay = timedelta(seconds=self.calling.survey_delay_for(queue))
        request = CallbackRequest(
            phone=phone,
            kind=JobKind.SURVEY,
            not_before=ended + delay,
            not_after=ended + SURVEY_MAX_DELAY,
            queue=queue,
            agent=agent,
            language=language or self.survey_config.default_language,
            origin_call_sid=call_sid,
            reason="post-call survey",
        )
        try:
            return await self.schedule(request, job_id=f"survey-{call_sid}")
        except NoWindow:
            log.info("survey dropped: no window", extra={"call_sid": call_sid})
            return None

    # --- surveys and cases --------------------------------------------------------------
    async def record_survey(self, answer: SurveyAnswer) -> SurveyResult:
        """Store a survey's answers; a poor one opens a care case with a follow-up."""
        recorded = await self.surveys.record(answer)
        if not recorded:
            return SurveyResult(recorded=False)
        if not answer.poor or not answer.phone:
            return SurveyResult(recorded=True)
        if answer.complaint:
            kind = CaseKind.COMPLAINT
        elif answer.score is not None and answer.score <= 2:
            kind = CaseKind.POOR_SCORE
        else:
            kind = CaseKind.NOT_SOLVED
        case, job = await self.open_case(
            kind=kind,
            phone=answer.phone,
            call_sid=answer.call_sid,
            queue=answer.queue,
            agent=answer.agent,
            language=answer.language,
            note=f"survey score={answer.score} solved={answer.solved}",
        )
        return SurveyResult(recorded=True, case=case, follow_up=job)

    async def open_case(
        self,
        *,
        kind: CaseKind,
        phone: str,
        call_sid: str | None = None,
        queue: str | None = None,
        agent: str | None = None,
        language: str | None = None,
        note: str | None = None,
    ) -> tuple[Case, Job | None]:
        """Open a care case (once per call) and schedule its follow-up at the first window
        moment; the response target is 24 h from opening. A complaint logged by the IVR
        menu or an agent disposition comes here too."""
        case_id = call_sid or uuid.uuid4().hex
        case, _ = await self.cases.open(
            case_id,
            kind=kind,
            phone=phone,
            call_sid=call_sid,
            queue=queue,
            agent=agent,
            language=language,
            note=note,
        )
        job_kind = (
            JobKind.COMPLAINT_FOLLOW_UP if kind is CaseKind.COMPLAINT else JobKind.CARE_FOLLOW_UP
        )
        request = CallbackRequest(
            phone=phone,
            kind=job_kind,
            queue=self.calling.care_queue,
            agent=agent if kind is not CaseKind.COMPLAINT else None,
            language=language,
            reason=kind.value,
            note=note,
            case_id=case.id,
            origin_call_sid=call_sid,
        )
        try:
            job = await self.schedule(request, job_id=f"case-{case.id}")
        except NoWindow:
            log.warning("care case without a calling window", extra={"case_id": case.id})
            return case, None
        await self.cases.link_job(case.id, job.id)
        if job.due_ms > case.opened_ms + RESPONSE_TARGET_MS:
            log.warning(
                "care follow-up falls after the 24 h target",
                extra={"case_id": case.id, "due": ms_to_dt(job.due_ms).isoformat()},
            )
        fresh = await self.cases.get(case.id)
        return fresh or case, job

    async def on_settled(self, job: Job) -> None:
        """Scheduler hook: a follow-up that reached the customer counts as the case's first
        contact (its response time is measured against 24 h)."""
        if job.case_id and job.state is JobState.COMPLETED and job.outcome == "answered":
            await self.cases.record_contact(job.case_id)

    async def record_agent_outcome(
        self, job_id: str, outcome: AgentOutcome, note: str | None = None
    ) -> Job | None:
        """The agent's account of a follow-up; reached/resolved count as contact, resolved
        and wrong_number close the case."""
        if not await self.store.set_agent_outcome(job_id, outcome.value):
            return None
        job = await self.store.get(job_id)
        if job is not None and job.case_id:
            if outcome in (AgentOutcome.REACHED, AgentOutcome.RESOLVED):
                await self.cases.record_contact(job.case_id)
            if outcome in (AgentOutcome.RESOLVED, AgentOutcome.WRONG_NUMBER):
                await self.cases.close(job.case_id, note or outcome.value)
        return job
