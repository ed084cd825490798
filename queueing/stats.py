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
every request, so callers already waiting get fresh estimates. `math.inf` means no agent
is serving the queue (offer a callback).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from queueing import erlang, ewt, metrics
from queueing.agents import BUSY, AgentState
from queueing.store import CENTRE, INTERVAL_S, AgentStatus, QueueStore

PRIOR_AHT_S = 180.0  # assumed handle time until the first call has been handled
MEAN_RING_S = 5.0  # expected time from pairing to pick-up
MODEL_CACHE_S = 1.0
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


class QueueStats:
    def __init__(self, store: QueueStore, *, cache_s: float = MODEL_CACHE_S) -> None:
        self.store = store
        self.cache_s = cache_s
        self._model_at = -math.inf
        self._models: dict[str, QueueModel] = {}

    # --- estimated wait ----------------------------------------------------------------
    async def queue_models(self, *, fresh: bool = False) -> dict[str, QueueModel]:
        """Per queue: agents staffed, ready and busy, recent handle times; cached briefly."""
        if not fresh and time.monotonic() - self._model_at < self.cache_s:
            return self._models
        agents = await self.store.agents()
        recent = await self.store.recent_handle_times()
        everyone = tuple(x for row in recent.values() for x in row if x > 0)
        now_ms = self.store.now_ms()
        models: dict[str, QueueModel] = {}
        for name in self.store.queue_names:
            mine = [a for a in agents if name in a.queues]
            ready = sum(1 for a in mine if a.state == AgentState.READY)
            busy: list[float] = []
            for a in mine:
                if a.state == AgentState.RESERVED:
                    busy.append(-MEAN_RING_S)
                elif a.state in (AgentState.ON_CALL, AgentState.WRAP_UP):
                    start = a.picked_up_ms if a.picked_up_ms is not None else a.since_ms
                    busy.append(max(0.0, (now_ms - start) / 1000))
            # zero-length samples (a call dropped at pick-up) carry no rate information
            mine_samples = tuple(h for h in recent[name] if h > 0)
            models[name] = QueueModel(
                staffed=ready + len(busy),
                ready=ready,
                busy_elapsed_s=tuple(busy),
                recent_handle_s=mine_samples or everyone,
            )
        self._models, self._model_at = models, time.monotonic()
        return models

    async def wait_info(self, call_sid: str) -> WaitInfo | None:
        status = await self.store.call_status(call_sid)
        if status is None:
            return None
        queue = self.store.config.queues[status.queue]
        waited = max(0.0, (self.store.now_ms() - status.joined_ms) / 1000)
        models = await self.queue_models()
        model = models.get(status.queue, QueueModel(0, 0, (), ()))
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

    # --- snapshot ----------------------------------------------------------------------
    async def snapshot(self) -> dict[str, Any]:
        """Per-queue and centre figures, JSON-ready: live state, the current 15-minute
        interval, the last hour (4 intervals) and today (UTC day, by Redis's clock)."""
        store = self.store
        now_ms = store.now_ms()
        iv = now_ms // 1000 // INTERVAL_S
        day_start = (now_ms // 1000 // 86400) * 86400 // INTERVAL_S
        names = list(store.queue_names)
        intervals = range(day_start, iv + 1)
        rows = await store.interval_stats([*names, CENTRE], intervals)
        waiting = await store.waiting_now()
        agents = await store.agents()
        models = await self.queue_models(fresh=True)
        queues: dict[str, Any] = {}
        centre_hour: dict[str, int] = {}
        centre_today: dict[str, int] = {}
        centre_interval: dict[str, int] = {}
        for name in names:
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
            by_state = _by_state(a for a in agents if name in a.queues)
            hour_figures = summarize_counters(hour, target_s=qdef.target_answer_s)
            queues[name] = {
                "live": {
                    "waiting": live["waiting"],
                    "waiting_by_priority": live["by_priority"],
                    "longest_wait_s": (now_ms - oldest) / 1000 if oldest is not None else 0.0,
                    "agents_by_state": by_state,
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
        return {
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
            "agents": [a.to_json() for a in agents],
        }


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
