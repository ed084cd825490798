"""The supervisors' figures: one function (`SupervisorStats.figures`) feeds the JSON API,
the event stream, the Prometheus exposition and the wallboard, so they always agree.

Figures follow DESIGN.md's definitions (formulas in `queueing.metrics`) through
`QueueStats.snapshot()`; this module adds what the snapshot does not hold (an adapter, not
a change to the queue core):

- the waiting callers (masked number, wait, priority) and today's abandoned callers;
- Erlang C advice phrased for people ("2 more agents needed to reach 80/30 at the current
  rate"), with the recent handle time standing in when no call ended in the last hour;
- the wait-time histogram: an atomic script (`lua/supervisor_waits.lua`) counts the wait
  of every call that ended (answered and completed, or abandoned) into a per-day hash,
  from the routing group's index of ended calls, with a checkpoint so that each call is
  counted once whichever process runs it;
- the day chart: service level per 15-minute interval (from the routing counters) and the
  number waiting, sampled per minute (`Keys.sup_samples`);
- a daily roll-up of the 15-minute counters (`Keys.sup_daily`), kept
  `statistics.retention_days`, because the interval hashes live 8 days and the monthly
  report needs a month and the month before it.

Days are UTC days, as in `QueueStats.snapshot()`'s "today".
"""

from __future__ import annotations

import asyncio
import json
import math
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import redis.asyncio as aioredis

from config.keys import Keys
from config.logs import mask_phone
from config.users import SupervisorsConfig
from queueing import erlang, metrics
from queueing.live_queues import HEAD_MAX
from queueing.recent import Recent
from queueing.stats import QueueStats, summarize_counters
from queueing.store import CENTRE, INTERVAL_S, STATS_TTL_S, QueueStore

WAIT_BUCKETS_S: tuple[float, ...] = (5, 10, 15, 20, 25, 30, 45, 60, 120)
WAITING_LIST_MAX = HEAD_MAX  # waiting callers listed (first by priority, then longest wait)
ABANDONED_LIST_MAX = 100  # abandoned callers of the day listed
DAY_MS = 86_400_000
INTERVALS_PER_DAY = 86_400 // INTERVAL_S
SAMPLES_TTL_S = 2 * 86_400
ROLLUP_SOURCE_DAYS = STATS_TTL_S // 86_400 - 1  # interval hashes surely complete this far back
FIGURES_MAX_AGE_S = 1.0  # the GET routes' figures are refreshed once they are this old
FIGURES_STALE_MAX_S = 3.0  # ... and served while that refresh runs up to this age
JSON_CHUNK = 200  # list items encoded at a time by `json_chunked` (the loop runs between)
CHUNK = 10  # queues handled at a time by `figures()`
# zlib level of the gzip bodies (made once per snapshot and role, in a thread): measured
# with bench/holdstats_profile.py --gzip-levels on the bench's ~220 KB figures: level 6
# takes ~1.2 ms (once a second per role, off the loop) for 11.9 KB; 1: 0.5 ms, 16.3 KB;
# 3: 0.5 ms, 13.0 KB; 9: 5.2 ms, 10.8 KB
GZIP_LEVEL = 6


def day_of(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def day_start_ms(day: str) -> int:
    return int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp() * 1000)


def json_safe(value: Any) -> Any:
    """The value with every non-finite float replaced by None (JSON has no inf or NaN;
    an undefined figure is null, as DESIGN.md's ratios with an empty denominator)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _finite(value: float | None, digits: int = 1) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


def advice_text(more: int | None, goal: float, target_s: float) -> str:
    goal_txt = f"{round(goal * 100):g}/{target_s:g}"
    if more is None:
        return "no calls in the last hour: no staffing advice"
    if more <= 0:
        return f"staffing meets {goal_txt} at the current rate"
    noun = "agent" if more == 1 else "agents"
    return f"{more} more {noun} needed to reach {goal_txt} at the current rate"


def staffing_advice(
    staffing: Mapping[str, Any], *, recent_aht_s: float, goal: float, target_s: float
) -> dict[str, Any]:
    """The snapshot's Erlang C figures plus agents_more and a sentence. With calls in the
    last hour but none finished, the recent handle time stands in for the AHT."""
    out = dict(staffing)
    needed = out.get("agents_needed")
    calls = float(out.get("calls_per_hour") or 0)
    if needed is None and calls > 0 and recent_aht_s > 0:
        try:
            fig = erlang.agents_needed(
                calls, recent_aht_s, target_s=target_s, service_level_goal=min(goal, 0.999)
            )
            needed = fig.agents
            out.update(
                agents_needed=needed,
                erlang_service_level=fig.service_level,
                traffic_erlangs=fig.traffic_erlangs,
                aht_s=recent_aht_s,
                aht_source="recent handle times",
            )
        except ValueError:
            needed = None
    staffed = int(out.get("agents_staffed") or 0)
    more = None if needed is None else max(0, int(needed) - staffed)
    out["agents_more"] = more
    out["advice"] = advice_text(more, goal, target_s)
    return out


def _sum_rows(rows: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for row in rows:
        for k, v in row.items():
            if k.startswith("max_"):
                total[k] = max(total.get(k, 0), v)
            else:
                total[k] = total.get(k, 0) + v
    return total


def _flat(today: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "offered": today["offered"],
        "answered": today["answered"],
        "abandoned": today["abandoned"],
        "short_abandons": today["abandoned_short"],
        "answered_in_target": today["answered_in_target"],
        "abandoned_after_target": today["abandoned_after_target"],
        "handled": today["handled"],
        "service_level": today["service_level"],
        "asa_s": _finite(today["asa_s"]),
        "abandon_rate": today["abandon_rate"],
        "aht_s": _finite(today["aht_s"]),
    }


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


async def json_chunked(value: Mapping[str, Any]) -> bytes:
    """`_json(value)` byte for byte, for a dict with string keys, encoded a member at a time
    and long lists `JSON_CHUNK` items at a time, giving the event loop back in between."""
    parts: list[str] = []
    for key, member in value.items():
        if not isinstance(key, str):
            raise TypeError(f"json_chunked: key {key!r} is not a string")
        head = json.dumps(key) + ":"
        if isinstance(member, list | tuple) and len(member) > JSON_CHUNK:
            pieces = []
            for i in range(0, len(member), JSON_CHUNK):
                await asyncio.sleep(0)
                text = json.dumps(
                    list(member[i : i + JSON_CHUNK]), separators=(",", ":"), allow_nan=False
                )
                pieces.append(text[1:-1])
            parts.append(head + "[" + ",".join(pieces) + "]")
        else:
            parts.append(head + json.dumps(member, separators=(",", ":"), allow_nan=False))
        await asyncio.sleep(0)
    return ("{" + ",".join(parts) + "}").encode()


@dataclass(frozen=True)
class GzipHead:
    """The start of a gzip stream (RFC 1952): its header and the deflate blocks of `size`
    bytes whose CRC-32 is `crc`, flushed to a byte boundary and not final, so that
    `gzip_tail` can end it with bytes of the request's own (one member, exact)."""

    body: bytes
    crc: int
    size: int


def gzip_head(data: bytes, level: int = GZIP_LEVEL) -> GzipHead:
    """Blocking (zlib releases the GIL: run it in a thread for a large `data`)."""
    deflate = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: with a gzip header
    body = deflate.compress(data) + deflate.flush(zlib.Z_SYNC_FLUSH)
    return GzipHead(body, zlib.crc32(data), len(data))


def gzip_tail(head: GzipHead, tail: bytes) -> bytes:
    """The end of `head`'s stream: `tail` as a final stored block (RFC 1951 3.2.4: a
    block that refers to nothing before it), then the trailer (CRC-32 and size of all)."""
    n = len(tail)
    if n > 0xFFFF:
        raise ValueError("gzip_tail: a stored block holds at most 65,535 bytes")
    return b"".join(
        (
            struct.pack("<BHH", 1, n, n ^ 0xFFFF),  # BFINAL=1, BTYPE=00 (stored), LEN, NLEN
            tail,
            struct.pack("<II", zlib.crc32(tail, head.crc), (head.size + n) & 0xFFFFFFFF),
        )
    )


def redact(figures: Mapping[str, Any], role: str) -> dict[str, Any]:
    """Figures for `role`: a viewer sees masked numbers only; a supervisor also gets the
    full number of abandoned callers (for the call-back button)."""
    out = dict(figures)
    out["waiting_calls"] = [
        {k: v for k, v in c.items() if k != "phone"} for c in figures["waiting_calls"]
    ]
    out["abandoned_today"] = [
        {k: v for k, v in c.items() if k != "phone" or role == "supervisor"}
        for c in figures["abandoned_today"]
    ]
    out["role"] = role
    return out


# the held snapshot: figures, their encodings by name, those encodings gzipped by name
Held = tuple[dict[str, Any], dict[str, bytes], dict[str, "asyncio.Future[GzipHead]"]]


def _encoded(held: Held, name: str, encode: Callable[[dict[str, Any]], bytes]) -> bytes:
    figures, encoded, _ = held
    body = encoded.get(name)
    if body is None:
        body = encoded[name] = encode(figures)
    return body


def _json_head(role: str) -> Callable[[dict[str, Any]], bytes]:
    """The figures' JSON for `role` without its closing brace."""
    return lambda figures: _json(redact(figures, role))[:-1]


def _age_tail(age: float) -> bytes:
    return b',"age_s":%.3f}' % age


class SupervisorStats:
    """Reads only, except the wait histogram, the minute samples and the daily roll-up."""

    def __init__(
        self,
        stats: QueueStats,
        redis: aioredis.Redis,
        keys: Keys,
        config: SupervisorsConfig,
    ) -> None:
        self.stats = stats
        self.store: QueueStore = stats.store
        self.redis = redis
        self.keys = keys
        self.config = config
        self.group = self.store.group
        text = resources.files("queueing").joinpath("lua", "supervisor_waits.lua")
        self._waits = redis.register_script(text.read_text("utf-8"))
        # GET /api/v1/stats and /metrics: figures refreshed once they are FIGURES_MAX_AGE_S
        # old (in the background; never served past FIGURES_STALE_MAX_S), computed once for
        # every request in that time; their encodings per role beside them, and those
        # encodings gzipped (made once per snapshot in a thread, awaited by all who ask)
        self._latest: Recent[Held] = Recent(
            FIGURES_MAX_AGE_S, stale_max_s=FIGURES_STALE_MAX_S, name="supervisor figures"
        )
        # the JSON encodings asked for (one per role): a refresh makes them in advance,
        # and gzips in advance those asked for gzipped
        self._roles_asked: set[str] = set()
        self._gzip_asked: set[str] = set()

    @property
    def retention_s(self) -> int:
        return self.config.retention_days * 86_400

    # --- wait histogram ----------------------------------------------------------------
    async def ingest_waits(self) -> int:
        """Count the waits of calls ended since the last run (atomic; any process)."""
        now_ms = self.store.now_ms()
        today = day_of(now_ms)
        yesterday = day_of(now_ms - DAY_MS)
        k, g = self.keys, self.group
        counted = await self._waits(
            keys=[
                k.route_done(g),
                k.route_done_index(g),
                k.sup_wait_checkpoint(g),
                k.sup_wait_hist(g, today),
                k.sup_wait_hist(g, yesterday),
            ],
            args=[
                day_start_ms(today),
                self.retention_s,
                ",".join(str(int(b * 1000)) for b in WAIT_BUCKETS_S),
            ],
        )
        return int(counted)

    async def wait_histogram(self, day: str) -> dict[str, dict[str, Any]]:
        """'<queue>:<outcome>' -> {buckets: cumulative counts by bound (s), count, sum_s}."""
        raw: Any = await self.redis.hgetall(self.keys.sup_wait_hist(self.group, day))
        return histogram_from_hash(raw)

    # --- the one function --------------------------------------------------------------
    async def figures(self) -> dict[str, Any]:
        """Every live and today's figure per queue and for the centre (JSON-ready)."""
        await self.ingest_waits()
        read = await self.stats.live()
        snap = read.snapshot
        now_ms = int(snap["at_ms"])
        today = day_of(now_ms)
        names = list(self.store.queue_names)
        first_iv = day_start_ms(today) // 1000 // INTERVAL_S
        last_iv = now_ms // 1000 // INTERVAL_S
        intervals = list(range(first_iv, last_iv + 1))
        # the snapshot read today's intervals already (UTC day, the same bounds)
        rows = read.rows
        queues: dict[str, Any] = {}
        longest = 0.0
        prio_total: dict[str, int] = {}
        more_total = 0
        for n, name in enumerate(names):
            if n and not n % CHUNK:
                await asyncio.sleep(0)
            q = snap["queues"][name]
            qdef = self.store.config.queues[name]
            live = q["live"]
            longest = max(longest, float(live["longest_wait_s"]))
            for p, n in live["waiting_by_priority"].items():
                prio_total[p] = prio_total.get(p, 0) + int(n)
            staffing = staffing_advice(
                q["staffing"],
                recent_aht_s=float(live["aht_recent_s"]),
                goal=float(q["goal"]),
                target_s=qdef.target_answer_s,
            )
            more_total += int(staffing["agents_more"] or 0)
            queues[name] = {
                "target_s": qdef.target_answer_s,
                "goal": q["goal"],
                **_flat(q["today"]),
                "waiting": live["waiting"],
                "waiting_by_priority": live["waiting_by_priority"],
                "longest_wait_s": round(float(live["longest_wait_s"]), 1),
                "agents_by_state": live["agents_by_state"],
                "agents_staffed": live["agents_staffed"],
                "ewt_new_caller_s": live["ewt_new_caller_s"],
                "aht_recent_s": live["aht_recent_s"],
                "staffing": staffing,
                "last_hour": _flat(q["last_hour"]),
            }
        centre = snap["centre"]
        occupancy = centre["occupancy"]
        centre_out = {
            **_flat(centre["today"]),
            "waiting": centre["waiting"],
            "waiting_by_priority": dict(sorted(prio_total.items(), reverse=True)),
            "longest_wait_s": round(longest, 1),
            "agents_by_state": centre["agents_by_state"],
            "occupancy": occupancy["today"],
            "occupancy_last_hour": occupancy["last_hour"],
            "occupancy_now": centre["occupancy_now"],
            "agents_more": more_total,
            "last_hour": _flat(centre["last_hour"]),
        }
        waiting_calls = await self._waiting_calls(now_ms, read.heads)
        abandoned = await self._abandoned_today(now_ms, today)
        history = await self._history(today, intervals, rows, names)
        hist = await self.wait_histogram(today)
        agents: list[dict[str, Any]] = []
        for i in range(0, len(snap["agents"]), JSON_CHUNK):
            await asyncio.sleep(0)
            agents.extend(
                {
                    "id": a["id"],
                    "name": a["name"],
                    "state": a["state"],
                    "reason": a["reason"],
                    "time_in_state_s": a["time_in_state_s"],
                    "calls_handled": a["calls_handled"],
                    "queues": a["queues"],
                }
                for a in snap["agents"][i : i + JSON_CHUNK]
            )
        result: dict[str, Any] = {
            "at_ms": now_ms,
            "day": today,
            "thresholds": {"amber_s": self.config.amber_s, "red_s": self.config.red_s},
            "wait_buckets_s": list(WAIT_BUCKETS_S),
            "queues": queues,
            "centre": centre_out,
            "waiting_calls": waiting_calls,
            "agents": agents,
            "abandoned_today": abandoned,
            "history": history,
            "wait_histogram": hist,
        }
        # the agents (most of the figures) hold only ints, strings and rounded finite
        # times (AgentStatus.to_json): no walk through them for non-finite floats
        safe: dict[str, Any] = {k: v if k == "agents" else json_safe(v) for k, v in result.items()}
        return safe

    async def latest(self) -> tuple[dict[str, Any], float]:
        """`figures()` at most FIGURES_STALE_MAX_S old (refreshed in the background once
        FIGURES_MAX_AGE_S old), and its age in seconds; however many requests arrive, one
        refresh runs at a time and the others reuse the held figures or wait for it."""
        (figures, _, _), age = await self._latest.get(self._fresh)
        return figures, age

    def offer(self, figures: dict[str, Any]) -> None:
        """Figures computed elsewhere in this process (the stream's last event): kept for
        the GET routes if they are newer than the held ones and within the age bound."""
        age = max(0.0, (self.store.now_ms() - int(figures["at_ms"])) / 1000)
        held = self._latest.peek()
        if age < FIGURES_MAX_AGE_S and (held is None or held[0][0]["at_ms"] < figures["at_ms"]):
            self._latest.put((figures, {}, {}), time.monotonic() - age)

    async def latest_encoded(
        self, name: str, encode: Callable[[dict[str, Any]], bytes]
    ) -> tuple[bytes, float]:
        """`encode(latest figures)`, made once per snapshot for each `name` (a fixed few:
        one per role, and the Prometheus text), and the figures' age in seconds."""
        held, age = await self._latest.get(self._fresh)
        return _encoded(held, name, encode), age

    async def latest_gzip(
        self, name: str, encode: Callable[[dict[str, Any]], bytes]
    ) -> tuple[GzipHead, float]:
        """`latest_encoded(name, encode)` gzipped (not ended: see `gzip_tail`), made once
        per snapshot for each `name`, in a thread; the age is taken when it is ready."""
        self._gzip_asked.add(name)
        held, age = await self._latest.get(self._fresh)
        read_at = time.monotonic() - age
        gzipped = held[2]
        made = gzipped.get(name)
        if made is None:
            body = _encoded(held, name, encode)
            made = gzipped[name] = asyncio.ensure_future(asyncio.to_thread(gzip_head, body))
        # shielded: a request that goes away does not cancel it for the others
        head = await asyncio.shield(made)
        return head, time.monotonic() - read_at

    async def latest_json(self, role: str) -> bytes:
        """`latest()` redacted for `role`, as a JSON object whose last member is `age_s`
        (seconds since the figures were read)."""
        return b"".join(await self.latest_json_parts(role))

    async def latest_json_parts(self, role: str) -> tuple[bytes, bytes]:
        """`latest_json(role)` in two parts to be sent one after the other: the figures'
        JSON without its closing brace (made once per snapshot and role, ~200 KB with
        1,000 agents, so not copied per request) and `,"age_s":<age>}`."""
        self._roles_asked.add(role)
        head, age = await self.latest_encoded(f"json:{role}", _json_head(role))
        return head, _age_tail(age)

    async def latest_json_gzip(self, role: str) -> tuple[bytes, bytes]:
        """`latest_json(role)` as one gzip stream in two parts: the figures' JSON without
        its closing brace, compressed once per snapshot and role, and this request's end
        (`,"age_s":<age>}` in a stored block, and the trailer: a few dozen bytes)."""
        self._roles_asked.add(role)
        head, age = await self.latest_gzip(f"json:{role}", _json_head(role))
        return head.body, gzip_tail(head, _age_tail(age))

    async def _fresh(self) -> Held:
        """New figures and, made in slices as they are, the JSON for every role asked for
        before (so that no request has to encode them in one go), gzipped in a thread for
        those asked for gzipped before."""
        figures = await self.figures()
        encoded = {
            f"json:{role}": (await json_chunked(redact(figures, role)))[:-1]
            for role in sorted(self._roles_asked)
        }
        gzipped: dict[str, asyncio.Future[GzipHead]] = {}
        for name in sorted(self._gzip_asked):
            body = encoded.get(name)
            if body is not None:  # (the Prometheus text is made on demand)
                done = asyncio.get_running_loop().create_future()
                done.set_result(await asyncio.to_thread(gzip_head, body))
                gzipped[name] = done
        return figures, encoded, gzipped

    async def aclose(self) -> None:
        """Cancel a refresh in flight (shutdown)."""
        await self._latest.aclose()

    async def _waiting_calls(
        self, now_ms: int, heads: Mapping[str, Sequence[str]]
    ) -> list[dict[str, Any]]:
        k, g = self.keys, self.group
        sids = [sid for name in self.store.queue_names for sid in heads[name][:WAITING_LIST_MAX]]
        if not sids:
            return []
        raws = await self.redis.hmget(k.route_calls(g), sids)
        out: list[dict[str, Any]] = []
        for sid, raw in zip(sids, raws, strict=True):
            if raw is None:
                continue
            c = json.loads(raw)
            raw_info = c.get("info")
            info: dict[str, Any] = raw_info if isinstance(raw_info, dict) else {}
            phone = str(info.get("caller") or info.get("phone") or "")
            out.append(
                {
                    "call_sid": sid,
                    "queue": c.get("q"),
                    "priority": int(c.get("p", 0)),
                    "wait_s": round(max(0.0, (now_ms - int(c.get("j", now_ms))) / 1000), 1),
                    "callback": bool(c.get("cb")),
                    "number": mask_phone(phone),  # nobody needs the full number here
                }
            )
        out.sort(key=lambda c: (-c["priority"], -c["wait_s"]))
        return out[:WAITING_LIST_MAX]

    async def _abandoned_today(self, now_ms: int, today: str) -> list[dict[str, Any]]:
        start = day_start_ms(today)
        limit = self.store.config.routing.abandoned_list_max
        out: list[dict[str, Any]] = []
        for e in await self.store.abandoned(limit=limit):
            at = int(e.get("at_ms", 0))
            if at < start:
                break  # newest first
            raw_info = e.get("info")
            info: dict[str, Any] = raw_info if isinstance(raw_info, dict) else {}
            phone = str(info.get("caller") or info.get("phone") or "")
            out.append(
                {
                    "call_sid": e.get("call_sid"),
                    "queue": e.get("queue"),
                    "priority": int(e.get("priority", 0)),
                    "waited_s": round(int(e.get("waited_ms", 0)) / 1000, 1),
                    "at_ms": at,
                    "number": mask_phone(phone),
                    "phone": phone,
                }
            )
            if len(out) >= ABANDONED_LIST_MAX:
                break
        return out

    async def _history(
        self,
        today: str,
        intervals: Sequence[int],
        rows: Mapping[tuple[str, int], Mapping[str, int]],
        names: Sequence[str],
    ) -> dict[str, Any]:
        """Per interval: service level (all queues, and cumulative over the day); per
        minute of the day: calls waiting (sampled by the broadcaster; null: no sample)."""
        points = []
        running: dict[str, int] = {}
        for iv in intervals:
            row = _sum_rows(rows[(n, iv)] for n in names)
            running = _sum_rows([running, row])
            points.append(
                {
                    "t_ms": iv * INTERVAL_S * 1000,
                    "offered": row.get("offered", 0),
                    "service_level": metrics.service_level(
                        row.get("answered_in_target", 0),
                        row.get("answered", 0),
                        row.get("abandoned_after_target", 0),
                    ),
                    "service_level_cumulative": metrics.service_level(
                        running.get("answered_in_target", 0),
                        running.get("answered", 0),
                        running.get("abandoned_after_target", 0),
                    ),
                }
            )
        raw: Any = await self.redis.hgetall(self.keys.sup_samples(today))
        by_minute = {int(minute): int(json.loads(v)["waiting"]) for minute, v in raw.items()}
        last = max(by_minute, default=-1)
        # compact: one entry per minute of the day so far (null: not sampled)
        per_minute = [by_minute.get(m) for m in range(last + 1)]
        return {"intervals": points, "waiting_per_minute": per_minute}

    async def sample(self, figures: Mapping[str, Any]) -> None:
        """Record the number waiting for this minute of the day chart."""
        now_ms = int(figures["at_ms"])
        today = day_of(now_ms)
        minute = (now_ms - day_start_ms(today)) // 60_000
        value = json.dumps(
            {"waiting": figures["centre"]["waiting"], "sl": figures["centre"]["service_level"]}
        )
        key = self.keys.sup_samples(today)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, str(minute), value)
            pipe.expire(key, SAMPLES_TTL_S)
            await pipe.execute()

    # --- daily roll-up -----------------------------------------------------------------
    async def roll_up(self, day: str) -> bool:
        """Sum the day's 15-minute counters per queue into the daily hash. Only days whose
        interval hashes are surely all still there are rolled up (an older day keeps the
        roll-up made while it was recent). Idempotent: it recomputes from the source."""
        start = day_start_ms(day)
        now_ms = self.store.now_ms()
        if start > now_ms or start < now_ms - ROLLUP_SOURCE_DAYS * DAY_MS:
            return False
        first = start // 1000 // INTERVAL_S
        intervals = list(range(first, first + INTERVALS_PER_DAY))
        names = [*self.store.queue_names, CENTRE]
        rows = await self.store.interval_stats(names, intervals)
        mapping: dict[str, int] = {}
        for name in names:
            total = _sum_rows(rows[(name, iv)] for iv in intervals)
            for counter, value in total.items():
                mapping[f"{name}:{counter}"] = value
        key = self.keys.sup_daily(self.group, day)
        if not mapping:
            return False
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
            pipe.expire(key, self.retention_s)
            await pipe.execute()
        return True

    async def roll_up_recent(self) -> None:
        now = datetime.fromtimestamp(self.store.now_ms() / 1000, tz=UTC).date()
        for back in (0, 1):
            await self.roll_up((now - timedelta(days=back)).isoformat())

    async def daily(self, days: Sequence[str]) -> dict[str, dict[str, dict[str, int]]]:
        """day -> queue (or '_centre') -> counters, from the roll-up (days without one are
        absent)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(self.keys.sup_daily(self.group, day))
            raws: list[Mapping[str, str]] = await pipe.execute()
        out: dict[str, dict[str, dict[str, int]]] = {}
        for day, raw in zip(days, raws, strict=True):
            if not raw:
                continue
            per: dict[str, dict[str, int]] = {}
            for field, value in raw.items():
                queue, _, counter = field.rpartition(":")
                per.setdefault(queue, {})[counter] = int(float(value))
            out[day] = per
        return out

    async def write_daily(self, day: str, per_queue: Mapping[str, Mapping[str, int]]) -> None:
        """Store a day's roll-up as given (imports, and tests that script a month)."""
        mapping = {f"{q}:{k}": v for q, row in per_queue.items() for k, v in row.items()}
        key = self.keys.sup_daily(self.group, day)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if mapping:
                pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
                pipe.expire(key, self.retention_s)
            await pipe.execute()


def histogram_from_hash(raw: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    counts: dict[str, dict[str, int]] = {}
    for field, value in raw.items():
        series, _, le = field.rpartition(":")
        counts.setdefault(series, {})[le] = int(value)
    out: dict[str, dict[str, Any]] = {}
    for series, c in sorted(counts.items()):
        cumulative = 0
        buckets: list[list[float | int]] = []
        for bound in WAIT_BUCKETS_S:
            cumulative += c.get(str(int(bound * 1000)), 0)
            buckets.append([bound, cumulative])
        out[series] = {
            "buckets": buckets,
            "count": c.get("count", 0),
            "sum_s": c.get("sum_ms", 0) / 1000,
        }
    return out


def month_days(month: str) -> list[str]:
    first = datetime.strptime(month, "%Y-%m").date()
    days = []
    d = first
    while d.month == first.month:
        days.append(d.isoformat())
        d += timedelta(days=1)
    return days


def previous_month(month: str) -> str:
    first = datetime.strptime(month, "%Y-%m").date()
    last_prev = first - timedelta(days=1)
    return last_prev.strftime("%Y-%m")


def summarize_day(counters: Mapping[str, int], target_s: float | None = None) -> dict[str, Any]:
    """The DESIGN.md figures of one roll-up row (same function as the live stats)."""
    return summarize_counters(dict(counters), target_s=target_s)


__all__ = [
    "WAIT_BUCKETS_S",
    "SupervisorStats",
    "advice_text",
    "day_of",
    "day_start_ms",
    "histogram_from_hash",
    "month_days",
    "previous_month",
    "redact",
    "staffing_advice",
    "summarize_day",
]
