"""Service-level statistics from the routing counters, estimated wait, and staffing advice.

Counters (written atomically by the routing scripts, per queue, per 15-minute interval of
Redis's clock, in hashes kept 8 days; see `config.keys.Keys.route_stats`):
  offered, answered, answered_in_target, abandoned, abandoned_short,
  abandoned_after_target, wait_answered_ms, wait_abandoned_ms, max_wait_answered_ms,
  handled, talk_ms, wrap_ms, callbacks, answered_callback, overflowed, answered_overflow,
  no_answer, lease_expired, dispatch_failed, callback_unreached, cancelled.
The centre hash (`_centre`) holds agent time per state (`ms_<state>`), credited to the
interval in which the state *ended*.

Figures follow DESIGN.md's definitions through `queueing.metrics`; Erlang C staffing comes
from `queueing.erlang.agents_needed`.

Estimated wait (EWT) comes from `queueing.ewt.estimate_wait(s)`: the caller's position,
the eligible agents ready now, how long each busy eligible agent has been on its call
(from its pick-up time; negative while ringing), and the queue's latest handle times
(talk + wrap-up, the last 100, kept by the scripts), falling back to the whole centre's
samples and, before any call has been handled, to `PRIOR_AHT_S`. It is recomputed on
every request (position and time waited are read each time), so callers already waiting
get fresh estimates; the agents' states and handle times behind it are those of the
caller's queue only (its configured eligible agents, read with one HMGET), refreshed
`MODEL_CACHE_S` after they were read: the refresh runs in the background while the held
model is served, so a hold request never waits for it, unless the model is older than
`MODEL_STALE_FACTOR` x `MODEL_CACHE_S` (see `queueing.recent`). `math.inf` means no agent
is serving the queue (offer a callback).

The statistics read (`live`) gives the event loop back between chunks of its work
(`CHUNK` agents or queues at a time), so that requests are served while it runs: with
1,000 agents and 50 queues its CPU comes in pieces of about a millisecond or two rather
than in runs of ~8 ms.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from queueing import erlang, ewt, metrics
from queueing.agents import BUSY, AgentState
from queueing.live_queues import read_waiting
from queueing.recent import Recent
from queueing.store import (
    CENTRE,
    INTERVAL_S,
    AgentStatus,
    CallStatus,
    QueueStore,
    call_status_of,
)

PRIOR_AHT_S = 180.0  # assumed handle time until the first call has been handled
MEAN_RING_S = 5.0  # expected time from pairing to pick-up
MODEL_CACHE_S = 1.0
MODEL_STALE_FACTOR = 3.0  # a model is served while it refreshes until this x cache_s old
CHUNK = 10  # queues per slice of the statistics computation (agents: CHUNK_AGENTS)
CHUNK_AGENTS = 200
COUNTERS = (
    "offered",
    "answered",
    "answered_in_target",
    "abandoned",
    "abandoned_short",
    "abandoned_after_target",
    "wait_answered_ms",
    "wait_abandoned_ms",
    "handled",
    "talk_ms",
    "wrap_ms",
    "callbacks",
    "answered_callback",
    "overflowed",
    "answered_overflow",
    "no_answer",
    "lease_expired",
    "dispatch_failed",
    "callback_unreached",
    "cancelled",
)


@dataclass(frozen=True)
class WaitInfo:
    """What the hold loop announces, and whether to offer a callback."""

    call_sid: str
    queue: str
    state: str
    position: int | None
    waited_s: float
    ewt_s: float | None  # None once the call is no longer waiting; inf: nobody serving
    offer_callback: bool
    agents_staffed: int
    callback: bool  # already a virtual callback


@dataclass(frozen=True)
class QueueModel:
    staffed: int  # eligible agents ready or busy
    ready: int
    busy_elapsed_s: tuple[float, ...]
    recent_handle_s: tuple[float, ...]

    @property
    def aht_s(self) -> float:
        h = self.recent_handle_s
        return sum(h) / len(h) if h else PRIOR_AHT_S

    def estimate(self, position: int) -> float:
        """EWT in seconds for the caller at 1-based `position` (inf: nobody serving)."""
        return ewt.estimate_wait(
            position,
            ready_agents=self.ready,
            busy_elapsed_s=self.busy_elapsed_s,
            recent_handle_s=self.recent_handle_s,
            prior_handle_s=PRIOR_AHT_S,
            mean_ring_s=MEAN_RING_S,
        )


def _finite(value: float) -> float | None:
    return round(value, 1) if math.isfinite(value) else None


def summarize_counters(c: dict[str, int], *, target_s: float | None = None) -> dict[str, Any]:
    """Figures from one queue's summed counters (times in seconds, ratios 0..1 or None)."""
    answered = c.get("answered", 0)
    handled = c.get("handled", 0)
    return {
        "offered": c.get("offered", 0),
        "answered": answered,
        "abandoned": c.get("abandoned", 0),
        "abandoned_short": c.get("abandoned_short", 0),
        "answered_in_target": c.get("answered_in_target", 0),
        "abandoned_after_target": c.get("abandoned_after_target", 0),
        "callbacks": c.get("callbacks", 0),
        "overflowed": c.get("overflowed", 0),
        "no_answer": c.get("no_answer", 0),
        "lease_expired": c.get("lease_expired", 0),
        "service_level": metrics.service_level(
            c.get("answered_in_target", 0), answered, c.get("abandoned_after_target", 0)
        ),
        "target_s": target_s,
        "asa_s": metrics.average_speed_of_answer(c.get("wait_answered_ms", 0) / 1000, answered),
        "abandon_rate": metrics.abandonment_rate(c.get("abandoned", 0), c.get("offered", 0)),
        "aht_s": metrics.average_handle_time(
            (c.get("talk_ms", 0) + c.get("wrap_ms", 0)) / 1000, handled
        ),
        "handled": handled,
        "talk_s": c.get("talk_ms", 0) / 1000,
        "wrap_s": c.get("wrap_ms", 0) / 1000,
        "max_wait_answered_s": c.get("max_wait_answered_ms", 0) / 1000,
    }


def _add(into: dict[str, int], row: dict[str, int]) -> None:
    for key, value in row.items():
        if key.startswith("max_"):
            into[key] = max(into.get(key, 0), value)
        else:
            into[key] = into.get(key, 0) + value


@dataclass(frozen=True)
class Live:
    """What one statistics read saw: the JSON snapshot, the interval counters it summed
    (queue or CENTRE, interval) and the first `HEAD_MAX` waiting CallSids of each queue in
    service order (the supervisors' list of waiting callers reuses them)."""

    snapshot: dict[str, Any]
    rows: dict[tuple[str, int], dict[str, int]]
    heads: dict[str, list[str]]


class QueueStats:
    """Estimates and statistics over one `QueueStore`.

    Caches, per process: each queue's estimate model (`cache_s`, 1 s: agents' states and
    handle times seen by the hold loop are at most that old; one entry per configured queue),
    and today's ended 15-minute intervals' counters (they no longer change; at most one
    day's intervals x (queues + 1) rows, older days dropped)."""

    def __init__(self, store: QueueStore, *, cache_s: float = MODEL_CACHE_S) -> None:
        self.store = store
        self.cache_s = cache_s
        stale_s = cache_s * MODEL_STALE_FACTOR
        by_queue: dict[str, list[str]] = {name: [] for name in store.queue_names}
        for agent_id in store.config.agents:
            for name in store.config.eligible(agent_id):
                if name in by_queue:
                    by_queue[name].append(agent_id)
        self._eligible_ids = {name: tuple(ids) for name, ids in by_queue.items()}
        self._eligible = {aid: store.config.eligible(aid) for aid in store.config.agents}
        self._models: dict[str, Recent[QueueModel]] = {
            name: Recent(cache_s, stale_max_s=stale_s, name=f"queue model {name}")
            for name in store.queue_names
        }
        self._all_samples: Recent[tuple[float, ...]] = Recent(
            cache_s, stale_max_s=stale_s, name="centre handle times"
        )
        self._rows: dict[tuple[str, int], dict[str, int]] = {}

    # --- estimated wait ----------------------------------------------------------------
    async def queue_models(self, *, fresh: bool = False) -> dict[str, QueueModel]:
        """Per queue: agents staffed, ready and busy, recent handle times (every queue at
        once: one read of all agents). Without `fresh`, models up to `cache_s` old serve."""
        if not fresh:
            held = [self._models[name].peek() for name in self.store.queue_names]
            if all(h is not None for h in held):
                return {n: h[0] for n, h in zip(self.store.queue_names, held, strict=True) if h}
        agents = await self.agents()
        return await self._models_from(agents, time.monotonic())

    async def aclose(self) -> None:
        """Cancel the model refreshes in flight (shutdown)."""
        for model in self._models.values():
            await model.aclose()
        await self._all_samples.aclose()

    async def agents(self) -> list[AgentStatus]:
        """`QueueStore.agents()`, parsed `CHUNK_AGENTS` at a time with the loop given back
        in between (1,000 agents parse in ~7 ms)."""
        store = self.store
        raw = {
            _str(k): _str(v)
            for k, v in (await store.redis.hgetall(store.keys.route_agents(store.group))).items()
        }
        now = store.now_ms()
        configured = store.config.agents
        ids = list(configured) + sorted(set(raw) - set(configured))
        out: list[AgentStatus] = []
        for i in range(0, len(ids), CHUNK_AGENTS):
            if i:
                await asyncio.sleep(0)
            out.extend(
                store._agent_status(aid, raw.get(aid), now) for aid in ids[i : i + CHUNK_AGENTS]
            )
        return out

    async def _models_from(
        self, agents: list[AgentStatus], read_at: float
    ) -> dict[str, QueueModel]:
        recent = await self.store.recent_handle_times()
        everyone = tuple(x for row in recent.values() for x in row if x > 0)
        self._all_samples.put(everyone, read_at)
        mine = _by_queue(agents, self.store.queue_names)
        now_ms = self.store.now_ms()
        models: dict[str, QueueModel] = {}
        for i, name in enumerate(self.store.queue_names):
            if i and not i % CHUNK:
                await asyncio.sleep(0)
            serving = [(a.state, _call_start(a)) for a in mine[name] if a.state in _SERVING]
            models[name] = build_model(serving, recent[name], everyone, now_ms)
            self._models[name].put(models[name], read_at)
        return models

    async def queue_model(self, name: str) -> QueueModel:
        """One queue's model, from that queue's eligible agents only; at most `cache_s` old,
        read once per expiry however many hold requests arrive meanwhile."""
        model, _ = await self._models[name].get(lambda: self._read_model(name))
        return model

    async def _read_model(self, name: str) -> QueueModel:
        store = self.store
        k, g = store.keys, store.group
        ids = self._eligible_ids[name]
        pipe = store.redis.pipeline(transaction=False)
        pipe.lrange(k.route_recent_handle(g, name), 0, -1)
        if ids:
            pipe.hmget(k.route_agents(g), list(ids))
        out = await pipe.execute()
        now_ms = store.now_ms()
        serving: list[tuple[AgentState, int]] = []
        for aid, raw in zip(ids, out[1] if ids else [], strict=True):
            if raw is None:
                continue  # never logged in: offline
            a = json.loads(raw)
            state = AgentState(a.get("s", "offline"))
            if state not in _SERVING:
                continue
            queues = a.get("q")
            if name not in (queues if isinstance(queues, dict) else self._eligible[aid]):
                continue
            start = a.get("pick") if a.get("pick") is not None else a.get("since", now_ms)
            serving.append((state, int(start)))
        samples = [int(x) / 1000 for x in out[0]]
        everyone: tuple[float, ...] = ()
        if not any(h > 0 for h in samples):  # no own samples: the centre's stand in
            everyone, _ = await self._all_samples.get(self._read_all_samples)
        return build_model(serving, samples, everyone, now_ms)

    async def _read_all_samples(self) -> tuple[float, ...]:
        recent = await self.store.recent_handle_times()
        return tuple(x for row in recent.values() for x in row if x > 0)

    async def wait_info(self, call_sid: str, queue_hint: str | None = None) -> WaitInfo | None:
        """Position, wait so far and estimate for the hold loop. `queue_hint` (the queue the
        hold URL names) lets the call record and the position be read in one round trip."""
        status = await self._call_status(call_sid, queue_hint)
        if status is None:
            return None
        queue = self.store.config.queues[status.queue]
        waited = max(0.0, (self.store.now_ms() - status.joined_ms) / 1000)
        model = (
            await self.queue_model(status.queue)
            if status.queue in self._models
            else QueueModel(0, 0, (), ())
        )
        estimate = None
        if status.state == "waiting" and status.position is not None:
            estimate = model.estimate(status.position)
        return WaitInfo(
            call_sid=call_sid,
            queue=status.queue,
            state=status.state,
            position=status.position,
            waited_s=waited,
            ewt_s=estimate,
            offer_callback=(
                estimate is not None
                and not status.callback
                and estimate > queue.callback_threshold_s
            ),
            agents_staffed=model.staffed,
            callback=status.callback,
        )

    async def _call_status(self, call_sid: str, queue_hint: str | None) -> CallStatus | None:
        store = self.store
        if queue_hint is None or queue_hint not in self._models:
            return await store.call_status(call_sid)
        k, g = store.keys, store.group
        pipe = store.redis.pipeline(transaction=False)
        pipe.hget(k.route_calls(g), call_sid)
        pipe.zrank(k.route_waiting(g, queue_hint), call_sid)
        raw, rank = await pipe.execute()
        if raw is None:
            return await store.call_status(call_sid)  # ended (or unknown): the slow path
        c = json.loads(raw)
        waiting = c.get("st") == "waiting"
        if c.get("q") != queue_hint or (waiting and rank is None):
            return await store.call_status(call_sid)  # in another queue, or it just moved
        return call_status_of(call_sid, c, int(rank) + 1 if waiting else None)

    # --- snapshot ----------------------------------------------------------------------
    async def today_rows(
        self, names: Sequence[str], intervals: Sequence[int], current: int
    ) -> dict[tuple[str, int], dict[str, int]]:
        """Interval counters of `names` x `intervals`. Intervals ended before `current - 1`
        no longer change (the scripts write to the interval of Redis's clock), so they are
        read once and kept; the last two are read every time."""
        fresh = [
            iv
            for iv in intervals
            if iv >= current - 1 or any((n, iv) not in self._rows for n in names)
        ]
        rows = await self.store.interval_stats(list(names), fresh) if fresh else {}
        for (name, iv), row in rows.items():
            if iv < current - 1:
                self._rows[(name, iv)] = row
        first = intervals[0] if intervals else current
        for key in [key for key in self._rows if key[1] < first]:
            del self._rows[key]  # an earlier day's
        return {
            (name, iv): rows.get((name, iv)) or self._rows.get((name, iv), {})
            for name in names
            for iv in intervals
        }

    async def snapshot(self) -> dict[str, Any]:
        """Per-queue and centre figures, JSON-ready: live state, the current 15-minute
        interval, the last hour (4 intervals) and today (UTC day, by Redis's clock)."""
        return (await self.live()).snapshot

    async def live(self) -> Live:
        """The snapshot plus the raw reads it was made from (see `Live`)."""
        store = self.store
        read_at = time.monotonic()
        now_ms = store.now_ms()
        iv = now_ms // 1000 // INTERVAL_S
        day_start = (now_ms // 1000 // 86400) * 86400 // INTERVAL_S
        names = list(store.queue_names)
        intervals = range(day_start, iv + 1)
        rows = await self.today_rows([*names, CENTRE], intervals, iv)
        waiting, heads = await read_waiting(store)
        agents = await self.agents()
        models = await self._models_from(agents, read_at)
        states = _states_by_queue(agents, names)
        queues: dict[str, Any] = {}
        centre_hour: dict[str, int] = {}
        centre_today: dict[str, int] = {}
        centre_interval: dict[str, int] = {}
        for n, name in enumerate(names):
            if n and not n % CHUNK:
                await asyncio.sleep(0)
            qdef = store.config.queues[name]
            interval: dict[str, int] = {}
            hour: dict[str, int] = {}
            today: dict[str, int] = {}
            for i in intervals:
                row = rows[(name, i)]
                _add(today, row)
                if i > iv - 4:
                    _add(hour, row)
                if i == iv:
                    _add(interval, row)
            _add(centre_hour, hour)
            _add(centre_today, today)
            _add(centre_interval, interval)
            live = waiting[name]
            oldest = live["oldest_joined_ms"]
            model = models[name]
            hour_figures = summarize_counters(hour, target_s=qdef.target_answer_s)
            queues[name] = {
                "live": {
                    "waiting": live["waiting"],
                    "waiting_by_priority": live["by_priority"],
                    "longest_wait_s": (now_ms - oldest) / 1000 if oldest is not None else 0.0,
                    "agents_by_state": states[name],
                    "agents_staffed": model.staffed,
                    # null: no agent is serving this queue
                    "ewt_new_caller_s": _finite(model.estimate(live["waiting"] + 1)),
                    "aht_recent_s": round(model.aht_s, 1),
                    "handle_samples": len(model.recent_handle_s),
                },
                "interval": summarize_counters(interval, target_s=qdef.target_answer_s),
                "last_hour": hour_figures,
                "today": summarize_counters(today, target_s=qdef.target_answer_s),
                "goal": qdef.service_level_goal,
                "staffing": _staffing(
                    hour, hour_figures, qdef.target_answer_s, qdef.service_level_goal, model.staffed
                ),
            }
        centre_rows = {i: rows[(CENTRE, i)] for i in intervals}
        busy_states = [f"ms_{s.value}" for s in BUSY]
        occ: dict[str, float | None] = {}
        for label, chosen in (
            ("interval", [iv]),
            ("last_hour", [i for i in intervals if i > iv - 4]),
            ("today", list(intervals)),
        ):
            busy = sum(centre_rows[i].get(k, 0) for i in chosen for k in busy_states)
            idle = sum(centre_rows[i].get("ms_ready", 0) for i in chosen)
            occ[label] = metrics.occupancy(busy / 1000, (busy + idle) / 1000)
        by_state = _by_state(agents)
        live_busy = sum(by_state.get(s.value, 0) for s in BUSY)
        live_staffed = live_busy + by_state.get("ready", 0)
        agents_json: list[dict[str, Any]] = []
        for i in range(0, len(agents), CHUNK_AGENTS):
            await asyncio.sleep(0)
            agents_json.extend(a.to_json() for a in agents[i : i + CHUNK_AGENTS])
        snapshot = {
            "at_ms": now_ms,
            "interval_start_ms": iv * INTERVAL_S * 1000,
            "queues": queues,
            "centre": {
                "waiting": sum(w["waiting"] for w in waiting.values()),
                "agents_by_state": by_state,
                "occupancy_now": live_busy / live_staffed if live_staffed else None,
                "occupancy": occ,
                "interval": summarize_counters(centre_interval),
                "last_hour": summarize_counters(centre_hour),
                "today": summarize_counters(centre_today),
            },
            "agents": agents_json,
        }
        return Live(snapshot=snapshot, rows=rows, heads=heads)


def build_model(
    serving: Iterable[tuple[AgentState, int]],
    recent_s: Sequence[float],
    everyone: tuple[float, ...],
    now_ms: int,
) -> QueueModel:
    """One queue's model from its eligible agents' (state, start of the current call: its
    pick-up, else the state's start) and its recent handle times (seconds, newest first);
    `everyone` (the centre's samples) stands in when the queue has none."""
    ready = 0
    busy: list[float] = []
    for state, start in serving:
        if state == AgentState.READY:
            ready += 1
        elif state == AgentState.RESERVED:
            busy.append(-MEAN_RING_S)
        elif state in (AgentState.ON_CALL, AgentState.WRAP_UP):
            busy.append(max(0.0, (now_ms - start) / 1000))
    # zero-length samples (a call dropped at pick-up) carry no rate information
    own = tuple(h for h in recent_s if h > 0)
    return QueueModel(
        staffed=ready + len(busy),
        ready=ready,
        busy_elapsed_s=tuple(busy),
        recent_handle_s=own or everyone,
    )


_SERVING = frozenset({AgentState.READY, *BUSY})  # the states build_model counts


def _str(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _call_start(a: AgentStatus) -> int:
    return a.picked_up_ms if a.picked_up_ms is not None else a.since_ms


def _by_queue(agents: Iterable[AgentStatus], names: Sequence[str]) -> dict[str, list[AgentStatus]]:
    """Each queue's eligible agents, in one pass over the agents."""
    out: dict[str, list[AgentStatus]] = {name: [] for name in names}
    for a in agents:
        for name in a.queues:
            mine = out.get(name)
            if mine is not None:
                mine.append(a)
    return out


def _states_by_queue(
    agents: Iterable[AgentStatus], names: Sequence[str]
) -> dict[str, dict[str, int]]:
    out = {name: {s.value: 0 for s in AgentState} for name in names}
    for a in agents:
        for name in a.queues:
            counts = out.get(name)
            if counts is not None:
                counts[a.state.value] += 1
    return out


def _by_state(agents: Any) -> dict[str, int]:
    counts = {s.value: 0 for s in AgentState}
    for a in agents:
        status: AgentStatus = a
        counts[status.state.value] += 1
    return counts


def _staffing(
    hour: dict[str, int],
    figures: dict[str, Any],
    target_s: float,
    goal: float,
    staffed: int,
) -> dict[str, Any]:
    """Erlang C advice at the arrival rate and AHT observed over the last hour."""
    calls_per_hour = float(hour.get("offered", 0))
    aht = figures["aht_s"]
    advice: dict[str, Any] = {
        "calls_per_hour": calls_per_hour,
        "aht_s": aht,
        "agents_staffed": staffed,
        "agents_needed": None,
        "erlang_service_level": None,
    }
    if aht is None or calls_per_hour <= 0:
        return advice
    try:
        needed = erlang.agents_needed(
            calls_per_hour, aht, target_s=target_s, service_level_goal=min(goal, 0.999)
        )
    except ValueError as exc:
        advice["error"] = str(exc)
        return advice
    advice["agents_needed"] = needed.agents
    advice["erlang_service_level"] = needed.service_level
    advice["traffic_erlangs"] = needed.traffic_erlangs
    return advice
