"""Surveys and the closed loop, end to end: the real service, the carrier emulator, a real
Redis. A caller talks to an agent, answers the survey by keypad, a poor score opens a care
case and a care callback; the scheduler dials it (its TwilioDialer points at the emulator)
and the customer is greeted and bridged to an agent; outbound surveys are dialled and
answered; machines and busy lines are handled per the retry policy."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from callbacks.appkeys import CALLBACKS, SCHEDULER
from callbacks.jobs import Job, JobState
from callbacks.scheduler import Scheduler
from callbacks.service import CallbackService
from callbacks.survey_calls import TRANSCRIBER
from config.calendar import Calendar, TimeRange
from config.calling import CallingConfig
from config.loader import HotlineConfig, load_config
from emulator import AgentPhone, CallerScript, CarrierEmulator, CustomerPhone
from emulator.calls import Call
from emulator.transcript import Transcript
from queueing.appkeys import QUEUE_ROUTER
from queueing.router import Router
from tests.e2e.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CONFIG_DIR,
    fast_wrap_up,
    wire_service,
)
from tests.ivr.conftest import with_calendar
from tests.twilio_signing import signature

CALLER = "+8613812345678"
HOTLINE = "+8640012345"
CARE_TOKEN = "care-e2e-token-0123456789abcdef"
AGENT_TOKEN = "agent-e2e-token-0123456789abcdef"
A02 = "+15550100002"
C01 = "+15550100101"
OPEN_FOR = dt.timedelta(minutes=10)  # the calling window closes this long after the test starts


def calling_window_closing_soon(calling: CallingConfig, now: dt.datetime) -> CallingConfig:
    """Every day open from an hour ago until OPEN_FOR from now (UTC), no holidays, every
    number in the bank's zone: a dial is allowed now; a 15-minute retry is not."""
    now = now.replace(second=0, microsecond=0)  # whole minutes: job times are in ms
    start = max(dt.time(0, 0), (now - dt.timedelta(hours=1)).time()) if now.hour else dt.time(0)
    end_dt = now + OPEN_FOR
    end = end_dt.time() if end_dt.date() == now.date() else dt.time.max
    window = Calendar(
        name="calling",
        timezone="UTC",
        weekly=tuple((TimeRange(start, end),) for _ in range(7)),
        holidays=frozenset(),
    )
    return dataclasses.replace(calling, window=window, countries=(), min_window_left_s=60.0)


@dataclass
class CareLine:
    emu: CarrierEmulator
    app: web.Application
    base: str
    config: HotlineConfig

    @property
    def voice_url(self) -> str:
        return f"{self.base}/voice"

    @property
    def router(self) -> Router:
        return self.app[QUEUE_ROUTER]

    @property
    def service(self) -> CallbackService:
        return self.app[CALLBACKS]

    @property
    def scheduler(self) -> Scheduler:
        return self.app[SCHEDULER]

    async def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {CARE_TOKEN}"}
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, f"{self.base}{path}", json=body, headers=headers) as resp,
        ):
            return resp.status, await resp.json()

    async def job(self, job_id: str) -> Job:
        job = await self.service.store.get(job_id)
        assert job is not None
        return job

    async def settled(self, job_id: str, timeout_s: float = 20.0) -> Job:
        """The job once its attempt has a final outcome (the status callback arrived)."""
        job = await self.job(job_id)
        for _ in range(int(timeout_s / 0.05)):
            job = await self.job(job_id)
            if job.state not in {JobState.DIALLING, JobState.IN_PROGRESS}:
                return job
            await asyncio.sleep(0.05)
        raise AssertionError(f"job {job_id} still {job.state.value}")

    async def dial_due(self, job_id: str) -> Call:
        """One scheduler pass (the service's TwilioDialer, pointed at the emulator)."""
        assert await self.scheduler.run_once() >= 1
        job = await self.job(job_id)
        assert job.call_sid, f"job {job_id} was not dialled: {job.state.value} {job.outcome}"
        return self.emu.calls[job.call_sid]


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 15.0) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
async def care_line(
    aiohttp_server: Any, redis_url: str, key_prefix: str
) -> AsyncIterator[CareLine]:
    config = fast_wrap_up(with_calendar(load_config(CONFIG_DIR), open_=True))
    now = dt.datetime.now(dt.UTC)
    config = dataclasses.replace(config, calling=calling_window_closing_soon(config.calling, now))
    wired = await wire_service(
        aiohttp_server,
        redis_url,
        key_prefix,
        config,
        api_tokens={CARE_TOKEN: "care", AGENT_TOKEN: "agent"},
    )
    emu, app = wired.emu, wired.app
    # The tests drive the scheduler step by step (run_once); the router keeps running.
    await app[SCHEDULER].stop()
    try:
        yield CareLine(emu, app, wired.base_url, config)
    finally:
        await emu.close()
        await wired.emu_runner.cleanup()
    assert emu.internal_errors == []


def said(transcript: Transcript) -> str:
    return " | ".join(transcript.heard_text())


SCORE_EN = "On a scale of 1 to 5, where 5 is very satisfied, how satisfied were you? Press 1 to 5."
SOLVED_EN = "Was your problem solved? Press 1 for yes, 2 for no."
THANKS_EN = "Thank you for your feedback. Goodbye."


async def test_a_poor_in_call_survey_opens_a_case_and_a_care_callback_that_reaches_an_agent(
    care_line: CareLine,
) -> None:
    line = care_line
    agent = AgentPhone(number=A02, answer_after=1, handle_time=20)
    line.emu.register_agent(agent)
    await line.router.login("a02", ready=True)
    # English, an adviser; then the survey: score 2, not solved (2); a 2-second comment.
    call = await line.emu.place_inbound_call(
        voice_url=line.voice_url,
        from_=CALLER,
        to=HOTLINE,
        script=CallerScript.of(["2", "0", "2", "2"], record_seconds=2),
    )
    transcript = await call.wait_finished(40)
    heard = transcript.heard_text()
    assert transcript.outcome.answered_by == A02
    assert SCORE_EN in heard and SOLVED_EN in heard, said(transcript)
    assert heard[-1] == THANKS_EN
    assert line.emu.errors == []

    # The answers, per call, queue and agent, through the care API.
    status, body = await line.api("GET", "/api/v1/surveys")
    assert status == 200, body
    answers = body["items"]
    assert len(answers) == 1
    answer = answers[0]
    assert answer["call_sid"] == call.sid
    assert (answer["score"], answer["solved"]) == (2, False)
    assert (answer["queue"], answer["agent"], answer["language"]) == ("general", "a02", "en")
    assert answer["comment_url"] and answer["comment_url"].startswith(line.emu.public_url)

    # A score of 2 opened a care case with a 24 h deadline, and a care callback within it.
    status, body = await line.api("GET", "/api/v1/cases")
    assert status == 200, body
    cases = body["items"]
    assert [c["call_sid"] for c in cases] == [call.sid]
    case = cases[0]
    assert case["kind"] == "poor_score" and case["status"] == "open"
    opened = dt.datetime.fromisoformat(case["opened_at"].replace("Z", "+00:00"))
    deadline = dt.datetime.fromisoformat(case["deadline"].replace("Z", "+00:00"))
    assert deadline - opened == dt.timedelta(hours=24)
    status, body = await line.api("GET", "/api/v1/callbacks?kind=care_follow_up")
    assert status == 200, body
    jobs = body["items"]
    assert len(jobs) == 1
    job = jobs[0]
    assert job["id"] == case["follow_up_job"]
    assert job["status"] == "scheduled" and job["agent"] == "a02"
    due = dt.datetime.fromisoformat(job["due_at"].replace("Z", "+00:00"))
    assert due <= opened + dt.timedelta(hours=24)

    # The scheduler dials it; the customer answers and is bridged to the call's agent.
    await until(lambda: _agent_free(agent))
    line.emu.register_customer(CALLER, CustomerPhone(answer="human", answer_after=1))
    back = await (await line.dial_due(job["id"])).wait_finished(40)
    assert back.heard_text()[0].startswith("Hello, this is the bank returning your call.")
    assert back.outcome.answered_by == A02
    assert any("Care call." in w for leg in agent.legs for w in leg.whisper)
    settled = await line.settled(job["id"])
    assert settled.state is JobState.COMPLETED and settled.outcome == "answered"
    status, body = await line.api("GET", "/api/v1/cases")
    contacted = body["items"][0]
    assert contacted["status"] == "contacted" and contacted["met_24h_target"] is True

    # The agent records the outcome: resolved closes the case.
    status, body = await line.api(
        "POST", f"/api/v1/callbacks/{job['id']}/outcome", {"outcome": "resolved"}
    )
    assert status == 200, body
    status, body = await line.api("GET", "/api/v1/cases")
    assert body["items"] == []
    assert line.emu.errors == []


async def _agent_free(agent: AgentPhone) -> bool:
    return agent.active == 0


async def test_a_retried_survey_webhook_records_once(care_line: CareLine) -> None:
    """Twilio resends a webhook on a timeout: the same answer must not count twice."""
    line = care_line
    line.emu.register_agent(AgentPhone(number=A02, answer_after=1, handle_time=10))
    await line.router.login("a02", ready=True)
    call = await line.emu.place_inbound_call(
        voice_url=line.voice_url,
        from_=CALLER,
        to=HOTLINE,
        script=CallerScript.of(["2", "0", "5", "1"], record_seconds=0),
    )
    await call.wait_finished(40)
    first = await line.service.surveys.get(call.sid)
    assert first is not None and (first.score, first.solved) == (5, True)
    # Replay the solved answer exactly as Twilio would (signed, same URL and form).
    url = f"{line.base}/survey/solved?sv={call.sid}&lang=en&q=general&a=a02&score=5&t=0"
    form = {
        "CallSid": call.sid,
        "AccountSid": ACCOUNT_SID,
        "From": CALLER,
        "To": HOTLINE,
        "Direction": "inbound",
        "CallStatus": "in-progress",
        "Digits": "1",
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            url, data=form, headers={"X-Twilio-Signature": signature(url, form, AUTH_TOKEN)}
        ) as resp,
    ):
        assert resp.status == 200
        assert "Hangup" in await resp.text()
    stats = await line.service.surveys.stats(
        line.service.surveys.day_of(first.answered_ms), scope="queue"
    )
    assert stats["general"].answers == 1 and stats["general"].csat == 1.0


async def test_a_recorded_comment_is_stored_and_transcribed_in_the_background(
    care_line: CareLine,
) -> None:
    line = care_line
    fetched: list[int] = []

    languages: list[str | None] = []

    async def transcribe(url: str, *, lang: str | None = None) -> str:
        # the shape of ivr.voice.transcribe_recording(url, lang=)
        languages.append(lang)
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            audio = await resp.read()
        fetched.append(len(audio))
        assert audio[:4] == b"RIFF"
        return "  the adviser was very helpful  "

    line.app[TRANSCRIBER].transcribe = transcribe
    line.emu.register_agent(AgentPhone(number=A02, answer_after=1, handle_time=10))
    await line.router.login("a02", ready=True)
    call = await line.emu.place_inbound_call(
        voice_url=line.voice_url,
        from_=CALLER,
        to=HOTLINE,
        script=CallerScript.of(["2", "0", "5", "1"], record_seconds=3),
    )
    transcript = await call.wait_finished(40)
    assert "record:3s" in [i for step in transcript.steps for i in step.input]

    async def transcribed() -> bool:
        answer = await line.service.surveys.get(call.sid)
        return answer is not None and answer.comment_text is not None

    await until(transcribed)
    status, body = await line.api("GET", "/api/v1/surveys")
    [answer] = body["items"]
    assert answer["comment_text"] == "the adviser was very helpful"
    assert answer["comment_url"].startswith(line.emu.public_url) and fetched
    assert languages == ["en"]
    assert (answer["score"], answer["solved"]) == (5, True)
    status, body = await line.api("GET", "/api/v1/cases")
    assert body["items"] == []  # a good score opens no case
