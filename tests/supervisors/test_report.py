"""`hotline report` on a month of scripted data: today's calls driven through the queue
store (real scripts, real Redis), earlier days as daily roll-ups, surveys, complaints and
callbacks through their stores. Its totals match /api/v1/stats."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from callbacks.cases import CaseKind, CaseStore
from callbacks.jobs import JobKind, NewJob
from callbacks.store import CallbackStore
from callbacks.surveys_store import SurveyAnswer, SurveyStore
from config.keys import Keys
from config.loader import HotlineConfig
from config.users import PlanTargets, SupervisorsConfig
from hotline.report import build_report
from queueing.supervisor_stats import month_days, previous_month
from tests.supervisors.conftest import ServiceFactory, sign_in, store_of, sup_stats
from tests.supervisors.test_stats import script

DAY = {
    "general": {
        "offered": 100,
        "answered": 88,
        "answered_in_target": 75,
        "abandoned": 12,
        "abandoned_short": 3,
        "abandoned_after_target": 6,
        "wait_answered_ms": 1_320_000,
        "handled": 88,
        "talk_ms": 15_840_000,
        "wrap_ms": 1_320_000,
    },
    "cards": {"offered": 20, "answered": 20, "answered_in_target": 19, "handled": 20},
}


async def test_report_renders_and_its_totals_match_the_stats_api(
    service: ServiceFactory,
    redis: aioredis.Redis,
    keys: Keys,
    demo_config: HotlineConfig,
    tmp_path: Path,
) -> None:
    client = await service()
    await script(store_of(client))
    await sign_in(client)
    live = await (await client.get("/api/v1/stats")).json()
    today = live["day"]
    month = today[:7]
    prev = previous_month(month)
    source = sup_stats(client)
    earlier = [d for d in month_days(month) if d < today][:3]
    for day in earlier:
        await source.write_daily(day, DAY)
    for day in month_days(prev)[:5]:
        await source.write_daily(day, DAY)
    # surveys: this month 5, 4, 2, 5, 3; the month before 3, 4
    zone = demo_config.calling.bank_timezone
    surveys = SurveyStore(redis, keys, zone)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    for i, score in enumerate((5, 4, 2, 5, 3)):
        await surveys.record(SurveyAnswer(f"CAsurvey{i}", now_ms - i, score=score, queue="general"))
    prev_ms = int(
        datetime.strptime(prev + "-10", "%Y-%m-%d").replace(tzinfo=UTC).timestamp() * 1000
    )
    for i, score in enumerate((3, 4)):
        await surveys.record(SurveyAnswer(f"CAold{i}", prev_ms + i, score=score, queue="general"))
    # two complaints: one contacted at once, one not yet due
    cases = CaseStore(redis, keys)
    await cases.open("CAcomp1", kind=CaseKind.COMPLAINT, phone="+15550002001")
    await cases.open("CAcomp2", kind=CaseKind.COMPLAINT, phone="+15550002002")
    await cases.open("CApoor", kind=CaseKind.POOR_SCORE, phone="+15550002003")
    await cases.record_contact("CAcomp1")
    await cases.close("CApoor", "resolved")
    # three callbacks: one dialled and reached (the agent's outcome), one dialled, one not yet
    jobs = CallbackStore(redis, keys, demo_config.calling.limits)
    made = []
    for i in range(3):
        job = await jobs.create(
            NewJob(kind=JobKind.QUEUE_CALLBACK, phone=f"+1555000300{i}", due_ms=now_ms + 3600_000)
        )
        made.append(job.id)
    for job_id in made[:2]:  # what the scheduler writes when it dials (attempt number)
        await redis.hset(keys.cb_job(job_id), "attempt", "1")
    assert await jobs.set_agent_outcome(made[0], "reached")

    users = SupervisorsConfig(plan=PlanTargets(baseline_satisfaction_index=3.5))
    result = await build_report(redis, keys, demo_config, users, month, tmp_path)

    cur, before = result.current, result.previous
    n = len(earlier)
    for name in ("offered", "answered", "abandoned"):
        expected = n * sum(row.get(name, 0) for row in DAY.values()) + live["centre"][name]
        assert cur.calls[name] == expected, name
        assert before.calls[name] == 5 * sum(row.get(name, 0) for row in DAY.values())
    # today's rolled-up day equals what the statistics API says for today
    rows = list(csv.DictReader((result.directory / "daily_by_queue.csv").open()))
    (complaints_today,) = [r for r in rows if r["day"] == today and r["queue"] == "complaints"]
    api = live["queues"]["complaints"]
    assert int(complaints_today["offered"]) == api["offered"] == 5
    assert int(complaints_today["answered"]) == api["answered"]
    assert int(complaints_today["abandoned"]) == api["abandoned"]
    assert float(complaints_today["service_level"]) == pytest.approx(api["service_level"])
    (all_today,) = [r for r in rows if r["day"] == today and r["queue"] == "all"]
    assert float(all_today["service_level"]) == pytest.approx(live["centre"]["service_level"])
    assert cur.score_counts == {1: 0, 2: 1, 3: 1, 4: 1, 5: 2}
    assert cur.surveys["answers"] == 5 and cur.surveys["csat"] == pytest.approx(0.6)
    assert cur.surveys["satisfaction_index"] == pytest.approx(3.8)
    assert before.surveys["satisfaction_index"] == pytest.approx(3.5)
    assert (cur.complaints, cur.complaints_answered_24h, cur.complaints_pending) == (2, 1, 1)
    assert (cur.cases_opened, cur.cases_closed) == (3, 1)
    assert (cur.callbacks_created, cur.callbacks_made, cur.callbacks_reached) == (3, 2, 1)
    assert cur.complaints_per_1000() == pytest.approx(2 * 1000 / cur.calls["answered"])
    page = (result.directory / "index.html").read_text()
    assert "Service level" in page and "Complaints per 1,000" in page
    assert "No call statistics for" in page  # days of the month without data are named
    assert "&gt;= 3.85" in page  # satisfaction target: baseline 3.5 + 10 %
    for png in (
        "service_level_by_day.png",
        "calls_by_day.png",
        "asa_abandonment_by_day.png",
        "csat_distribution.png",
    ):
        data = (result.directory / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    kpis = {r["name"]: r for r in csv.DictReader((result.directory / "kpis.csv").open())}
    assert kpis["Complaints answered within 24 h"]["current"] == "100.0 %"
    assert kpis["Satisfaction index (1-5)"]["status"] == "not met"  # 3.80 < 3.85


async def test_report_says_when_there_is_no_data(
    redis: aioredis.Redis, keys: Keys, demo_config: HotlineConfig, tmp_path: Path
) -> None:
    month = (datetime.now(UTC) - timedelta(days=70)).strftime("%Y-%m")
    result = await build_report(redis, keys, demo_config, SupervisorsConfig(), month, tmp_path)
    page = (result.directory / "index.html").read_text()
    assert f"No call statistics are kept for {month}" in page
    assert "No survey answers this month" in page
    assert not result.current.has_call_data
