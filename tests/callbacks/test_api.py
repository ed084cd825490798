"""The care-team API over HTTP (aiohttp test client), against the real Redis."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

from callbacks.api import add_routes
from callbacks.appkeys import CALLBACKS
from callbacks.cases import CaseStore
from callbacks.jobs import JobState
from callbacks.recording_dialer import RecordingDialer
from callbacks.scheduler import Scheduler
from callbacks.service import CallbackService
from callbacks.store import CallbackStore
from callbacks.surveys_store import SurveyAnswer, SurveyStore
from config.calling import CallingConfig
from config.keys import Keys
from config.runtime import SETTINGS
from config.settings import Settings
from config.surveys import load_surveys

ROOT = Path(__file__).resolve().parents[2]
CARE = {"Authorization": "Bearer care-token-123"}
VIEW = {"Authorization": "Bearer view-token-123"}
AGENT = {"Authorization": "Bearer agent-token-123"}
QUEUES = frozenset({"cards", "loans", "general"})

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def service(
    redis: aioredis.Redis, keys: Keys, store: CallbackStore, calling: CallingConfig
) -> CallbackService:
    return CallbackService(
        store,
        SurveyStore(redis, keys, calling.bank_timezone),
        CaseStore(redis, keys),
        calling,
        load_surveys(ROOT / "config" / "surveys.yaml"),
        QUEUES | {calling.care_queue},
    )


@pytest.fixture
async def client(
    service: CallbackService, aiohttp_client: Callable[[web.Application], Awaitable[Client]]
) -> Client:
    app = web.Application()
    app[SETTINGS] = Settings(
        api_tokens={
            "care-token-123": "care",
            "view-token-123": "viewer",
            "agent-token-123": "agent",
        }
    )
    app[CALLBACKS] = service
    add_routes(app)
    return await aiohttp_client(app)


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def create(client: Client, **body: Any) -> Any:
    payload = {"phone": "+8613812345678", "queue": "cards", "reason": "card blocked", **body}
    resp = await client.post("/api/v1/callbacks", json=payload, headers=CARE)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_auth_is_required(client: Client) -> None:
    assert (await client.get("/api/v1/callbacks")).status == 401
    resp = await client.post("/api/v1/callbacks", json={}, headers=AGENT)
    assert resp.status == 403
    assert (await client.get("/api/v1/cases", headers=VIEW)).status == 200


async def test_create_returns_the_job(client: Client, service: CallbackService) -> None:
    now = await service.store.now()
    job = await create(
        client,
        not_before=iso(now + timedelta(hours=1)),
        not_after=iso(now + timedelta(hours=5)),
        note="customer asked for a call after lunch",
        language="en",
        phone="+86 138-1234-5678",
    )
    assert job["status"] == "scheduled" and job["phone"] == "+8613812345678"
    assert job["kind"] == "care_follow_up" and job["queue"] == "cards"
    assert datetime.fromisoformat(job["due_at"]) >= now + timedelta(hours=1) - timedelta(seconds=1)
    assert job["history"][0]["state"] == "scheduled"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"phone": "13812345678"}, {"phone"}),
        ({"phone": "+0123"}, {"phone"}),
        ({"queue": "nonexistent"}, {"queue"}),
        ({"queue": None, "agent": None}, {"queue"}),
        ({"not_after": "2020-01-01T00:00:00Z"}, {"not_after"}),
        ({"not_before": "tomorrow"}, {"not_before"}),
        ({"not_before": "2030-01-01T10:00:00"}, {"not_before"}),  # no offset
        (
            {"not_before": "2030-01-02T10:00:00Z", "not_after": "2030-01-01T10:00:00Z"},
            {"not_after"},
        ),
        ({"language": "fr"}, {"language"}),
        ({"kind": "survey"}, {"kind"}),
        ({"timezone": "Mars/Base"}, {"timezone"}),
        ({"note": "x" * 2001}, {"note"}),
        (
            {"phone": "bad", "queue": "nope", "not_after": "2020-01-01T00:00:00Z"},
            {"phone", "queue", "not_after"},
        ),
    ],
)
async def test_create_validation_names_fields(
    client: Client, body: dict[str, Any], fields: set[str]
) -> None:
    payload = {"phone": "+8613812345678", "queue": "cards", **body}
    payload = {k: v for k, v in payload.items() if v is not None}
    resp = await client.post("/api/v1/callbacks", json=payload, headers=CARE)
    assert resp.status == 422
    data = await resp.json()
    assert data["error"] == "validation failed"
    assert set(data["fields"]) == fields, data


async def test_create_refuses_a_dnc_number_and_non_json(
    client: Client, service: CallbackService
) -> None:
    await service.store.dnc_add(["+8613812340000"])
    resp = await client.post(
        "/api/v1/callbacks", json={"phone": "+8613812340000", "queue": "cards"}, headers=CARE
    )
    assert resp.status == 422 and "do-not-call" in (await resp.json())["fields"]["phone"]
    resp = await client.post("/api/v1/callbacks", data="not json", headers=CARE)
    assert resp.status == 400


async def test_list_filters_and_paginates(client: Client) -> None:
    made = [await create(client, phone=f"+86138123400{i:02d}") for i in range(7)]
    await client.delete(f"/api/v1/callbacks/{made[0]['id']}", headers=CARE)
    seen: list[str] = []
    url = "/api/v1/callbacks?limit=3"
    while True:
        resp = await client.get(url, headers=CARE)
        assert resp.status == 200
        page = await resp.json()
        assert len(page["items"]) <= 3
        seen += [item["id"] for item in page["items"]]
        if not page["next_cursor"]:
            break
        url = f"/api/v1/callbacks?limit=3&cursor={page['next_cursor']}"
    assert sorted(seen) == sorted(m["id"] for m in made)
    resp = await client.get("/api/v1/callbacks?status=cancelled", headers=CARE)
    assert [i["id"] for i in (await resp.json())["items"]] == [made[0]["id"]]
    resp = await client.get("/api/v1/callbacks?phone=%2B8613812340003", headers=CARE)
    assert [i["id"] for i in (await resp.json())["items"]] == [made[3]["id"]]
    resp = await client.get(
        "/api/v1/callbacks?status=sleeping&limit=0&from=yesterday", headers=CARE
    )
    assert resp.status == 422
    assert set((await resp.json())["fields"]) == {"status", "limit", "from"}
    resp = await client.get("/api/v1/callbacks?cursor=garbage", headers=CARE)
    assert resp.status == 422


async def test_get_patch_and_cancel(client: Client, service: CallbackService) -> None:
    job = await create(client)
    resp = await client.get(f"/api/v1/callbacks/{job['id']}", headers=CARE)
    assert resp.status == 200 and (await resp.json())["attempts"] == []
    assert (await client.get("/api/v1/callbacks/nope", headers=CARE)).status == 404
    later = (await service.store.now()) + timedelta(days=1)
    resp = await client.patch(
        f"/api/v1/callbacks/{job['id']}",
        json={"not_before": iso(later), "agent": "agent-7", "note": "asked for tomorrow"},
        headers=CARE,
    )
    assert resp.status == 200, await resp.text()
    patched = await resp.json()
    assert patched["agent"] == "agent-7" and patched["note"] == "asked for tomorrow"
    assert datetime.fromisoformat(patched["due_at"]) >= later - timedelta(seconds=1)
    resp = await client.patch(f"/api/v1/callbacks/{job['id']}", json={"phone": "+1"}, headers=CARE)
    assert resp.status == 422 and "phone" in (await resp.json())["fields"]
    resp = await client.delete(f"/api/v1/callbacks/{job['id']}", headers=CARE)
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    resp = await client.delete(f"/api/v1/callbacks/{job['id']}", headers=CARE)
    assert resp.status == 409


async def test_a_dialling_job_cannot_be_cancelled(client: Client, service: CallbackService) -> None:
    job = await create(client)
    _, claims = await service.store.claim(max_jobs=10, calls_per_second=100, burst=100)
    assert [c.job.id for c in claims] == [job["id"]]
    resp = await client.delete(f"/api/v1/callbacks/{job['id']}", headers=CARE)
    assert resp.status == 409
    body = await resp.json()
    assert body["state"] == "dialling" and "cannot be cancelled" in body["error"]
    resp = await client.patch(f"/api/v1/callbacks/{job['id']}", json={"agent": "a1"}, headers=CARE)
    assert resp.status == 409
    still = await service.store.get(job["id"])
    assert still is not None and still.state is JobState.DIALLING


async def test_dnc_api_and_csv_import(client: Client, service: CallbackService) -> None:
    resp = await client.post("/api/v1/dnc", json={"phone": "+8613800001111"}, headers=CARE)
    assert resp.status == 201 and (await resp.json())["added"] == 1
    resp = await client.post(
        "/api/v1/dnc", json={"phones": ["+8613800001111", "nope"]}, headers=CARE
    )
    assert resp.status == 422 and set((await resp.json())["fields"]) == {"phones[1]"}
    csv_text = (
        "phone,name\n+8613800002222,A\n\n+44 20 7123 4567,B\nnot-a-number,C\n+8613800001111,D\n"
    )
    resp = await client.post(
        "/api/v1/dnc/import", data=csv_text.encode(), headers={**CARE, "Content-Type": "text/csv"}
    )
    assert resp.status == 200
    result = await resp.json()
    assert result["added"] == 2 and result["already_listed"] == 1
    assert [i["line"] for i in result["invalid"]] == [5]
    assert await service.store.dnc_contains("+442071234567")
    resp = await client.delete("/api/v1/dnc/%2B442071234567", headers=CARE)
    assert resp.status == 200
    assert not await service.store.dnc_contains("+442071234567")
    assert (await client.delete("/api/v1/dnc/%2B442071234567", headers=CARE)).status == 404


async def test_poor_survey_opens_a_case_with_a_follow_up_within_24h(
    client: Client,
    service: CallbackService,
    redis: aioredis.Redis,
    keys: Keys,
    calling: CallingConfig,
) -> None:
    now_ms = await service.store.now_ms()
    good = SurveyAnswer(
        "CAgood", now_ms, score=5, solved=True, queue="cards", agent="a1", phone="+8613800000005"
    )
    poor = SurveyAnswer(
        "CApoor", now_ms, score=2, solved=True, queue="cards", agent="a2", phone="+8613800000002"
    )
    unsolved = SurveyAnswer(
        "CAuns", now_ms, score=4, solved=False, queue="loans", agent="a1", phone="+8613800000004"
    )
    assert (await service.record_survey(good)).case is None
    result = await service.record_survey(poor)
    assert result.recorded and result.case is not None and result.follow_up is not None
    assert result.follow_up.kind.value == "care_follow_up" and result.follow_up.queue == "care"
    assert result.follow_up.due_ms <= result.case.opened_ms + 24 * 3600 * 1000
    assert (await service.record_survey(poor)).recorded is False  # once per call
    assert (await service.record_survey(unsolved)).case is not None

    resp = await client.get("/api/v1/surveys?queue=cards", headers=CARE)
    data = await resp.json()
    assert {i["call_sid"] for i in data["items"]} == {"CAgood", "CApoor"}
    assert data["summary"]["csat"] == 0.5 and data["summary"]["satisfaction_index"] == 3.5

    day = service.surveys.day_of(now_ms)
    resp = await client.get(f"/api/v1/surveys/stats?period={day}&scope=queue", headers=VIEW)
    stats = (await resp.json())["items"]
    assert stats["cards"]["answers"] == 2 and stats["cards"]["csat"] == 0.5
    assert stats["loans"]["unsolved"] == 1
    resp = await client.get(f"/api/v1/surveys/stats?period={day[:7]}&scope=agent", headers=VIEW)
    assert (await resp.json())["items"]["a1"]["satisfaction_index"] == 4.5
    assert (await client.get("/api/v1/surveys/stats?period=May", headers=VIEW)).status == 422

    resp = await client.get("/api/v1/cases", headers=CARE)
    cases = (await resp.json())["items"]
    assert {c["id"] for c in cases} == {"CApoor", "CAuns"}
    assert all(c["overdue"] is False and c["follow_up_job"] for c in cases)

    # the follow-up is dialled and answered: first contact, response time within 24 h
    sched = Scheduler(
        service.store, RecordingDialer(redis, keys), calling, on_settled=service.on_settled
    )
    await sched.run_once()
    job = await service.store.get(result.follow_up.id)
    assert job is not None and job.call_sid
    await sched.on_call_status(job.call_sid, "completed", "human")
    case = await service.cases.get("CApoor")
    assert case is not None and case.first_contact_ms is not None and case.met_target() is True
    resp = await client.post(
        f"/api/v1/callbacks/{job.id}/outcome", json={"outcome": "resolved"}, headers=AGENT
    )
    assert resp.status == 200 and (await resp.json())["agent_outcome"] == "resolved"
    resp = await client.get("/api/v1/cases", headers=CARE)
    assert {c["id"] for c in (await resp.json())["items"]} == {"CAuns"}
    resp = await client.post(
        f"/api/v1/callbacks/{job.id}/outcome", json={"outcome": "maybe"}, headers=CARE
    )
    assert resp.status == 422


async def test_patch_not_after_alone_keeps_the_due_time(
    client: Client, service: CallbackService
) -> None:
    now = await service.store.now()
    job = await create(client, not_before=iso(now + timedelta(hours=2)))
    resp = await client.patch(
        f"/api/v1/callbacks/{job['id']}",
        json={"not_after": iso(now + timedelta(hours=6))},
        headers=CARE,
    )
    assert resp.status == 200
    patched = await resp.json()
    assert patched["due_at"] == job["due_at"]
    assert patched["not_after"] is not None
