"""Every Lua script the project registers is called with keys that all map to one hash slot.

A real cluster client records each EVALSHA/EVAL it sends (the keys as called, not as
imagined) and each script registered with it. The stores of every package are built on
it and driven through short scenarios; the test then asks the cluster (CLUSTER KEYSLOT)
for the slot of every key of every call, and requires one slot per call and every
registered script to have been called at least once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript

from callbacks.cases import CaseKind, CaseStore
from callbacks.jobs import JobKind, JobState, NewJob
from callbacks.recording_dialer import RecordingDialer
from callbacks.store import CallbackStore
from callbacks.surveys_store import SurveyAnswer, SurveyStore
from config.keys import Keys
from config.loader import load_config
from ivr import engine
from ivr.sessions import SessionStore
from queueing.store import QueueStore
from tests.ivr.conftest import CONFIG_DIR

pytestmark = pytest.mark.cluster


@dataclass
class Recorder:
    registered: dict[str, str] = field(default_factory=dict)  # sha -> the script's text
    calls: list[tuple[str, list[str]]] = field(default_factory=list)  # (sha, keys)


class RecordingCluster(RedisCluster):
    """RedisCluster that notes the scripts registered with it and the keys of each call."""

    recorder: Recorder

    def register_script(self, script: Any) -> AsyncScript:  # type: ignore[override]
        registered = super().register_script(script)
        text = script.decode() if isinstance(script, bytes) else str(script)
        self.recorder.registered[registered.sha] = text
        return registered

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        name = str(args[0]).upper() if args else ""
        if name in {"EVALSHA", "EVAL"}:
            numkeys = int(args[2])
            sha = str(args[1]) if name == "EVALSHA" else ""
            self.recorder.calls.append((sha, [str(k) for k in args[3 : 3 + numkeys]]))
        return await super().execute_command(*args, **kwargs)


@pytest.fixture
async def recording(cluster_url: str, cluster_prefix: str) -> AsyncIterator[RecordingCluster]:
    first = cluster_url.replace("redis+cluster://", "redis://").split(",")[0]
    client = RecordingCluster.from_url(first, decode_responses=True)
    assert isinstance(client, RecordingCluster)
    client.recorder = Recorder()
    try:
        yield client
    finally:
        async for key in client.scan_iter(match=f"{cluster_prefix}*", count=500):
            await client.unlink(key)
        await client.aclose()


async def drive_ivr(redis: Any, keys: Keys) -> None:
    flow = load_config(CONFIG_DIR).flow
    sessions = SessionStore(redis, keys, 60)
    session = engine.new_session(flow, "CA" + uuid.uuid4().hex, "+8613812345678")
    assert (await sessions.advance(-1, session, "<Response/>"))[0]
    assert not (await sessions.advance(-1, session, "<Response/>"))[0]


async def drive_callbacks(redis: Any, keys: Keys) -> None:
    from config.calling import load_calling

    calling = load_calling(CONFIG_DIR / "calling.yaml")
    store = CallbackStore(redis, keys, calling.limits)
    now = await store.now_ms()
    job = await store.create(NewJob(kind=JobKind.SURVEY, phone="+8613800000001", due_ms=now - 1))
    _, claims = await store.claim(max_jobs=5, calls_per_second=1000, burst=1000)
    assert [c.job.id for c in claims] == [job.id]
    claim = claims[0]
    dialer = RecordingDialer(redis, keys)
    call_sid = await dialer.dial(claim.job)
    started, _ = await store.mark_started(job.id, claim.lease, call_sid)
    assert started
    await store.park_early_status("CA" + uuid.uuid4().hex, "busy", None)
    await store.set_agent_outcome(job.id, "resolved")
    await store.finish_attempt(
        job.id,
        target=JobState.COMPLETED,
        attempt=1,
        outcome="completed",
        reason="answered",
        call_sid=call_sid,
        lease=claim.lease,
    )
    later = await store.create(
        NewJob(kind=JobKind.CARE_FOLLOW_UP, phone="+8613800000002", due_ms=now + 3_600_000)
    )
    await store.cancel(later.id)
    await store.dnc_add(["+8613800000003"])

    cases = CaseStore(redis, keys)
    case_id = uuid.uuid4().hex
    await cases.open(case_id, kind=CaseKind.COMPLAINT, phone="+8613800000004")
    await cases.link_job(case_id, job.id)
    await cases.record_contact(case_id)
    await cases.close(case_id, "resolved")

    surveys = SurveyStore(redis, keys, "Asia/Shanghai")
    surveyed = "CA" + uuid.uuid4().hex
    await surveys.record(
        SurveyAnswer(call_sid=surveyed, answered_ms=int(time.time() * 1000), score=5)
    )
    assert await surveys.add_comment(surveyed, url="https://recordings.test/r1.wav")


def first_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[0][:80] if lines else ""


def lua_files() -> dict[str, str]:
    """Every .lua file of the packages that run scripts, but preludes that are only
    prepended to other scripts (queueing/lua/common.lua)."""
    root = CONFIG_DIR.parent
    found = {}
    for package in ("ivr", "queueing", "callbacks"):
        for path in sorted((root / package).rglob("*.lua")):
            if path.name != "common.lua":
                found[str(path.relative_to(root))] = path.read_text(encoding="utf-8").strip()
    return found


async def drive_supervisors(redis: Any, keys: Keys) -> None:
    from config.users import load_users
    from queueing.stats import QueueStats
    from queueing.supervisor_stats import SupervisorStats

    config = load_config(CONFIG_DIR).queues
    store = QueueStore(redis, keys, config)
    await store.sync_clock()
    await store.join("CA" + uuid.uuid4().hex, next(iter(config.queues)), pair=False)
    users = load_users(CONFIG_DIR / "users.yaml")
    figures = await SupervisorStats(QueueStats(store), redis, keys, users).figures()
    assert figures


async def drive_queueing(redis: Any, keys: Keys) -> None:
    config = load_config(CONFIG_DIR).queues
    store = QueueStore(redis, keys, config)
    await store.sync_clock()
    queue = next(iter(config.queues))
    agent = next(a for a in config.agents if config.eligible(a) and queue in config.eligible(a))
    await store.login(agent, ready=True)
    call = "CA" + uuid.uuid4().hex
    joined = await store.join(call, queue, pair=False)
    pairings = list(joined.pairings) if hasattr(joined, "pairings") else []
    pairings += list(await store.pair())
    assert pairings, "the ready agent was not paired with the waiting call"
    pairing = pairings[0]
    await store.dispatched(pairing)
    await store.no_answer(pairing.call_sid, pairing.reservation, party="system")
    again = list(await store.pair())
    if again:
        await store.dispatched(again[0])
        await store.answer(again[0].call_sid, again[0].reservation)
        await store.complete(again[0].call_sid)
    other = "CA" + uuid.uuid4().hex
    await store.join(other, queue, pair=False)
    await store.take_callback(other, "+8613800000005")
    await store.join("CA" + uuid.uuid4().hex, queue, pair=False)
    await store.leave(other, "abandoned")
    await store.sweep()


async def test_every_script_is_called_with_keys_in_one_slot(
    recording: RecordingCluster, cluster_prefix: str
) -> None:
    keys = Keys(prefix=cluster_prefix)
    await drive_ivr(recording, keys)
    await drive_callbacks(recording, keys)
    await drive_queueing(recording, keys)
    await drive_supervisors(recording, keys)

    recorder = recording.recorder
    assert recorder.calls
    for sha, call_keys in recorder.calls:
        name = first_line(recorder.registered.get(sha, sha))
        assert call_keys, f"script {name!r} called with no keys"
        slots = {int(await recording.cluster_keyslot(k)) for k in call_keys}
        assert len(slots) == 1, f"script {name!r} spans slots {sorted(slots)}: {call_keys}"
    called = {sha for sha, _ in recorder.calls}
    never = {first_line(recorder.registered[s]) for s in recorder.registered.keys() - called}
    assert not never, f"registered scripts this test never called: {sorted(never)}"
    # and every script in the source tree was registered (and so called) here
    texts = list(recorder.registered.values())
    missing = [name for name, text in lua_files().items() if not any(text in t for t in texts)]
    assert not missing, f"scripts this test does not drive yet: {missing}"
