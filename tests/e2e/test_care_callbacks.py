"""Care follow-ups, complaints and outbound surveys, dialled by the scheduler through the
emulator: a complaint call opens a case whose follow-up joins the care queue with
priority; an outbound-mode queue gets its survey by phone; a machine hears the message (or
the job gives up); a busy line is retried inside the calling window."""

from __future__ import annotations

import dataclasses
import datetime as dt
from types import MappingProxyType
from typing import Any

import aiohttp
import pytest

from callbacks.jobs import JobState, ms_to_dt
from callbacks.windows import customer_window, may_dial
from emulator import AgentPhone, CallerScript, CustomerPhone
from tests.e2e import test_surveys
from tests.e2e.test_surveys import AGENT_TOKEN, CALLER, HOTLINE, CareLine, until

care_line = test_surveys.care_line  # the fixture: service + emulator + care API token

C01 = "+15550100101"
A04 = "+15550100004"
A07 = "+15550100007"


async def test_a_complaint_call_opens_a_case_whose_follow_up_joins_the_care_queue(
    care_line: CareLine,
) -> None:
    line = care_line
    handler = AgentPhone(number=A07, answer_after=1, handle_time=10)
    line.emu.register_agent(handler)
    await line.router.login("a07", ready=True)
    # English, "make a complaint"; then a fair survey (4, solved): the complaint alone
    # opens the case.
    call = await line.emu.place_inbound_call(
        voice_url=line.voice_url,
        from_=CALLER,
        to=HOTLINE,
        script=CallerScript.of(["2", "4", "4", "1"], record_seconds=0),
    )
    transcript = await call.wait_finished(40)
    assert transcript.outcome.answered_by == A07
    assert transcript.heard_text()[-1] == "Thank you for your feedback. Goodbye."
    status, body = await line.api("GET", "/api/v1/cases")
    assert status == 200, body
    [case] = body["items"]
    assert case["kind"] == "complaint" and case["call_sid"] == call.sid
    assert case["queue"] == "complaints" and case["agent"] == "a07"
    survey = await line.service.surveys.get(call.sid)
    assert survey is not None and survey.complaint and survey.score == 4
    job = await line.job(case["follow_up_job"])
    assert job.kind.value == "complaint_follow_up" and job.agent is None
    assert job.queue == line.service.calling.care_queue == "vip"

    # Dialled: greeted, queued in the care queue with priority, answered by the care team.
    care = AgentPhone(number=C01, answer_after=1, handle_time=10)
    line.emu.register_agent(care)
    line.emu.register_customer(CALLER, CustomerPhone(answer="human", answer_after=1))
    outbound = await line.dial_due(job.id)
    await until(lambda: _queued(line, outbound.sid))
    status_now = await line.router.store.call_status(outbound.sid)
    assert status_now is not None and status_now.queue == "vip" and status_now.priority >= 8
    await line.router.login("c01", ready=True)
    back = await outbound.wait_finished(40)
    assert back.heard_text()[0].startswith("Hello, this is the bank returning your call.")
    assert back.outcome.answered_by == C01
    whisper = [w for leg in care.legs for w in leg.whisper]
    assert any("Reason: care follow-up: complaint." in w for w in whisper), whisper
    # no survey of a care follow-up (the loop would feed itself)
    assert "Was your problem solved? Press 1 for yes, 2 for no." not in back.heard_text()
    settled = await line.settled(job.id)
    assert settled.state is JobState.COMPLETED
    status, body = await line.api("GET", "/api/v1/cases")
    assert body["items"][0]["status"] == "contacted"
    assert line.emu.errors == []


async def _queued(line: CareLine, call_sid: str) -> bool:
    status = await line.router.store.call_status(call_sid)
    return status is not None


async def test_an_outbound_mode_queue_gets_its_survey_by_phone(care_line: CareLine) -> None:
    line = care_line
    # cards is an outbound-survey queue; no delay in this test (5 minutes in production)
    line.service.calling = dataclasses.replace(
        line.service.calling, survey_delay_s=MappingProxyType({"default": 0.0})
    )
    line.emu.register_agent(AgentPhone(number=A04, answer_after=1, handle_time=10))
    await line.router.login("a04", ready=True)
    call = await line.emu.place_inbound_call(
        voice_url=line.voice_url,
        from_=CALLER,
        to=HOTLINE,
        script=CallerScript.of(["2", "2"]),
    )
    transcript = await call.wait_finished(40)
    assert transcript.outcome.answered_by == A04
    assert transcript.heard_text()[-1] == "Thank you for calling. Goodbye."  # no survey now
    job = await line.job(f"survey-{call.sid}")
    assert job.kind.value == "survey" and job.state is JobState.SCHEDULED
    assert (job.queue, job.agent, job.language) == ("cards", "a04", "en")

    line.emu.register_customer(
        CALLER,
        CustomerPhone(answer="human", answer_after=1, script=CallerScript.of(["4", "1"])),
    )
    survey_call = await (await line.dial_due(job.id)).wait_finished(40)
    heard = survey_call.heard_text()
    assert heard[0] == "Thank you for calling. Please take a minute to rate our service."
    assert heard[-1] == "Thank you for your feedback. Goodbye."
    answer = await line.service.surveys.get(call.sid)  # filed under the agent call
    assert answer is not None
    assert (answer.score, answer.solved, answer.queue, answer.agent) == (4, True, "cards", "a04")
    assert (await line.settled(job.id)).state is JobState.COMPLETED
    status, body = await line.api("GET", "/api/v1/surveys?queue=cards")
    assert [a["call_sid"] for a in body["items"]] == [call.sid]
    assert line.emu.errors == []


@pytest.mark.parametrize(
    ("kind", "state", "hears_message"),
    [("care_follow_up", JobState.COMPLETED, True), ("survey", JobState.FAILED, False)],
)
async def test_an_answering_machine_hears_the_message_or_the_job_gives_up(
    care_line: CareLine, kind: str, state: JobState, hears_message: bool
) -> None:
    line = care_line
    if kind == "survey":
        job = await line.service.schedule_survey(
            call_sid="CA" + "7" * 32,
            phone=CALLER,
            queue="cards",
            agent="a04",
            language="en",
            ended_at=await line.service.store.now() - dt.timedelta(hours=1),
        )
        assert job is not None
        job_id = job.id
    else:
        status, body = await line.api(
            "POST",
            "/api/v1/callbacks",
            {"phone": CALLER, "queue": "vip", "reason": "care call", "language": "en"},
        )
        assert status == 201, body
        job_id = body["id"]
    line.emu.register_customer(CALLER, CustomerPhone(answer="machine", answer_after=1))
    heard = (await (await line.dial_due(job_id)).wait_finished(30)).heard_text()
    message = line.service.calling.machine_message_for("en")
    assert (heard == [message]) is hears_message, heard
    settled = await line.settled(job_id)
    assert settled.state is state
    assert settled.attempts[-1].answered_by == "machine_start"
    assert line.emu.errors == []


async def test_a_busy_line_is_retried_inside_the_calling_window(care_line: CareLine) -> None:
    line = care_line
    status, body = await line.api(
        "POST", "/api/v1/callbacks", {"phone": CALLER, "agent": "a02", "language": "en"}
    )
    assert status == 201, body
    line.emu.register_customer(CALLER, CustomerPhone(answer="busy"))
    await (await line.dial_due(body["id"])).wait_finished(30)
    job = await line.settled(body["id"])
    assert job.state is JobState.RETRY_SCHEDULED and job.outcome == "busy"
    attempted = ms_to_dt(job.attempts[-1].started_ms)
    retry_at = ms_to_dt(job.due_ms)
    calling = line.service.calling
    backoff = dt.timedelta(seconds=calling.retry_for("care_follow_up").delay_after(1))
    window = customer_window(job.phone, job.timezone, calling)
    min_left = dt.timedelta(seconds=calling.min_window_left_s)
    assert retry_at >= attempted + backoff
    assert may_dial(retry_at, window, min_left)
    # The window closes 10 minutes after the test started: a 15-minute backoff cannot
    # land today, so the retry waits for the next opening (never at night).
    assert retry_at - attempted > dt.timedelta(hours=12)
    assert not may_dial(attempted + backoff, window, min_left)
    assert line.emu.errors == []


async def test_an_agent_disposition_opens_a_complaint_case_once(care_line: CareLine) -> None:
    line = care_line
    line.emu.register_agent(AgentPhone(number="+15550100002", answer_after=1, handle_time=10))
    await line.router.login("a02", ready=True)
    call = await line.emu.place_inbound_call(
        voice_url=line.voice_url,
        from_=CALLER,
        to=HOTLINE,
        script=CallerScript.of(["2", "0", "5", "1"], record_seconds=0),
    )
    await call.wait_finished(40)
    status, body = await line.api("GET", "/api/v1/cases")
    assert body["items"] == []  # a happy caller on a general call: no case yet

    async def post(payload: dict[str, object], token: str = AGENT_TOKEN) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{line.base}/api/v1/cases", json=payload, headers=headers) as resp,
        ):
            return resp.status, await resp.json()

    status, body = await post({"call_sid": call.sid, "note": "wants the fee refunded"})
    assert status == 201, body
    case = body["case"]
    assert (case["kind"], case["queue"], case["agent"]) == ("complaint", "general", "a02")
    assert case["phone"] == CALLER and body["follow_up"]["kind"] == "complaint_follow_up"
    again = await post({"call_sid": call.sid})
    assert again[0] == 201 and again[1]["case"]["id"] == case["id"]  # once per call
    status, body = await line.api("GET", "/api/v1/cases")
    assert [c["id"] for c in body["items"]] == [case["id"]]
    assert (await post({"call_sid": "CA" + "0" * 32}))[0] == 404
    assert (await post({"call_sid": "nope", "kind": "rude"}))[1]["fields"].keys() == {
        "call_sid",
        "kind",
    }
    assert (await post({"call_sid": call.sid}, token="wrong"))[0] == 401
