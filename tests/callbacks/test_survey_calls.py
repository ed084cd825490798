"""The survey and outbound webhooks over HTTP (real service, real Redis, signed requests):
retries and re-prompts, the once-only answer, unknown jobs, status callbacks."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from callbacks.appkeys import CALLBACKS, SCHEDULER
from callbacks.jobs import JobKind, JobState, NewJob
from callbacks.survey_calls import SurveyCall
from ivr.twilio_params import BadRequestParams
from tests.ivr import conftest as ivr_conftest
from tests.twilio_signing import call_params, call_sid, signed_post

service = ivr_conftest.service
demo_config = ivr_conftest.demo_config
accounts = ivr_conftest.accounts

SURVEYED = call_sid(77)
SURVEY_CALL = call_sid(78)
Q = f"sv={SURVEYED}&lang=en&q=general&a=a02"


async def post(client: TestClient[Any, Any], path_qs: str, **form: str) -> str:
    resp = await signed_post(client, path_qs, call_params(SURVEY_CALL, **form))
    assert resp.status == 200, await resp.text()
    return await resp.text()


def test_the_state_round_trips_through_the_query() -> None:
    call = SurveyCall(SURVEYED, "ko", queue="cards", agent="a04", complaint=True, job="survey-x")
    query = {k: str(v) for k, v in call.query(t=1).items()}
    assert SurveyCall.from_query(query) == call
    for bad in ({"sv": "CA123"}, {"sv": SURVEYED, "q": "general<x>"}, {}):
        with pytest.raises(BadRequestParams):
            SurveyCall.from_query(bad)


async def test_unsigned_survey_requests_are_refused(service: ivr_conftest.AppFactory) -> None:
    client = await service()
    resp = await client.post(f"/survey/score?{Q}&t=0", data=call_params(SURVEY_CALL, Digits="1"))
    assert resp.status == 403


async def test_a_wrong_key_asks_again_then_silence_says_goodbye(
    service: ivr_conftest.AppFactory,
) -> None:
    client = await service()
    again = await post(client, f"/survey/score?{Q}&t=0", Digits="9")
    assert "Sorry, that is not a valid choice." in again and "t=1" in again
    assert "Press 1 to 5." in again and "Please take a minute" not in again
    done = await post(client, f"/survey/score?{Q}&t=1", Digits="")
    assert "Thank you for calling. Goodbye." in done and "<Hangup" in done
    assert await client.app[CALLBACKS].surveys.get(SURVEYED) is None


async def test_solved_unanswered_twice_is_recorded_as_unknown_once(
    service: ivr_conftest.AppFactory,
) -> None:
    client = await service()
    body = await post(client, f"/survey/score?{Q}&t=0", Digits="4")
    assert "score=4" in body and "Was your problem solved?" in body
    first = await post(client, f"/survey/solved?{Q}&score=4&t=1", Digits="")
    assert "<Record" in first and "/survey/comment?" in first
    answer = await client.app[CALLBACKS].surveys.get(SURVEYED)
    assert answer is not None and (answer.score, answer.solved) == (4, None)
    assert (answer.queue, answer.agent, answer.phone) == ("general", "a02", "+8613812345678")
    # Twilio's retry of the same request: same TwiML, nothing counted twice
    assert await post(client, f"/survey/solved?{Q}&score=4&t=1", Digits="") == first
    service_ = client.app[CALLBACKS]
    stats = await service_.surveys.stats(service_.surveys.day_of(answer.answered_ms), "all")
    assert stats["*"].answers == 1
    # a comment attaches to the recorded answer
    url = "https://api.twilio.test/2010-04-01/Accounts/AC1/Recordings/RE1"
    thanks = await post(client, f"/survey/comment?{Q}", RecordingUrl=url, RecordingDuration="4")
    assert "Thank you for your feedback. Goodbye." in thanks
    stored = await service_.surveys.get(SURVEYED)
    assert stored is not None and stored.comment_url == url and stored.comment_text is None


async def test_a_comment_without_a_survey_creates_nothing(
    service: ivr_conftest.AppFactory,
) -> None:
    client = await service()
    url = "https://api.twilio.test/2010-04-01/Accounts/AC1/Recordings/RE2"
    await post(client, f"/survey/comment?{Q}", RecordingUrl=url, RecordingDuration="2")
    assert await client.app[CALLBACKS].surveys.get(SURVEYED) is None


async def test_an_unknown_job_hangs_up_and_a_status_settles_the_job(
    service: ivr_conftest.AppFactory,
) -> None:
    client = await service()
    await client.app[SCHEDULER].stop()  # this test plays the scheduler's part by hand
    body = await post(client, "/voice/outbound?job=nope&kind=survey")
    assert "<Hangup" in body
    svc = client.app[CALLBACKS]
    now = await svc.store.now_ms()
    job = await svc.store.create(NewJob(JobKind.CARE_FOLLOW_UP, "+8613812345678", now - 10))
    _, claims = await svc.store.claim(max_jobs=1, calls_per_second=100, burst=100)
    assert [c.job.id for c in claims] == [job.id]
    ok, _ = await svc.store.mark_started(job.id, claims[0].lease, SURVEY_CALL)
    assert ok
    # a machine, for a care follow-up (policy: message), hears the short message
    machine = await post(
        client,
        f"/voice/outbound?job={job.id}&kind=care_follow_up",
        AnsweredBy="machine_start",
        Direction="outbound-api",
    )
    assert svc.calling.machine_message_for("zh") in machine and "<Hangup" in machine
    form = call_params(SURVEY_CALL, CallStatus="completed", AnsweredBy="machine_start")
    resp = await signed_post(client, f"/voice/outbound/status?job={job.id}", form)
    assert resp.status == 204
    settled = await svc.store.get(job.id)
    assert settled is not None and settled.state is JobState.COMPLETED
    assert settled.outcome == "machine_message"  # done: the message was left
    # a late duplicate changes nothing
    resp = await signed_post(client, f"/voice/outbound/status?job={job.id}", form)
    assert resp.status == 204
    assert (await svc.store.get(job.id)) == settled
