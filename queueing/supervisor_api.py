"""The supervisor API, live event stream, Prometheus exposition and the wallboard.

Routes:
  GET  /login                 sign-in page;  POST /login (form or JSON);  POST /logout
  GET  /api/v1/session        who is signed in, role, CSRF token
  GET  /api/v1/stats          every figure per queue and for the centre (JSON)
  GET  /api/v1/stats/stream   server-sent events: one `stats` event per second
  GET  /metrics               Prometheus text format (own CollectorRegistry)
  GET  /dashboard             the wallboard (static files under /dashboard/static/)
Authentication: a session (queueing.supervisor_auth) or a bearer token (config.apiauth);
roles supervisor and viewer read everything here (a viewer's numbers are masked).
/metrics takes a bearer token or a session too (scrapers use a viewer token).

All three data routes take their numbers from `SupervisorStats.figures()`.

The stream: each process runs one broadcaster that computes the figures once per second
while anybody listens (and, in the one process holding the sampler lease, once per
`SAMPLE_EVERY_S` otherwise, for the day chart and the roll-up) and
hands the event to every client's bounded queue. Event ids are Redis-clock seconds, so a
client that reconnects (to any process) with `Last-Event-ID` gets the buffered events
after that id, or the current one, and then the stream goes on. A client whose queue is
full (it stopped reading) is dropped, and a write that blocks longer than
`WRITE_TIMEOUT_S` ends its response: nothing is buffered for it without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import Payload
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from redis.exceptions import LockError

from config.queues import QueuesConfig
from config.runtime import KEYS, REDIS, SETTINGS
from config.users import SupervisorsConfig, load_users
from queueing.appkeys import QUEUE_STATS
from queueing.stats import QueueStats
from queueing.store import QueueStore
from queueing.supervisor_auth import (
    SUPERVISORS,
    authenticate,
    login,
    logout,
    read_session,
    session_info,
)
from queueing.supervisor_stats import SupervisorStats, day_start_ms, gzip_tail, redact

log = logging.getLogger("hotline.queueing")

READ_ROLES = ("supervisor", "viewer")
TICK_S = 1.0
SAMPLE_EVERY_S = 15.0
ROLLUP_EVERY_S = 300.0
CLIENT_QUEUE_MAX = 8  # events buffered per stream client (8 s); then it is dropped
RING_S = 60  # seconds of events kept for Last-Event-ID resumption (ids are seconds)
# Parts of the figures that change seldom (a caller abandons, a minute passes): an event
# whose part equals the previous event's keeps a reference to that one copy, so a full
# ring holds about one abandoned list, not sixty.
SHARED_PARTS = ("abandoned_today", "history", "wait_histogram", "agents", "waiting_calls")
# While nobody watches a stream, one process (the holder of this lease, a redis-py Lock
# with this TTL, renewed at each sample) takes the samples and the roll-up for all: if it
# dies, another takes over within SAMPLER_LEASE_S + SAMPLE_EVERY_S (a minute's sample of
# the day chart may be missing then).
SAMPLER_LEASE_S = 3 * SAMPLE_EVERY_S
WRITE_TIMEOUT_S = 10.0
KEEPALIVE_S = 15.0
SESSION_RECHECK_S = 30.0
ERROR_LOG_EVERY_S = 60.0
STATIC_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
}


@dataclass(eq=False)  # identity: one per connection, kept in a set
class Subscriber:
    role: str
    queue: asyncio.Queue[tuple[int, bytes] | None] = field(
        default_factory=lambda: asyncio.Queue(CLIENT_QUEUE_MAX)
    )
    dropped: bool = False


def encode_event(event_id: int, figures: Mapping[str, Any], role: str) -> bytes:
    data = json.dumps(redact(figures, role), separators=(",", ":"), allow_nan=False)
    return f"id: {event_id}\nevent: stats\ndata: {data}\n\n".encode()


class StatsBroadcaster:
    """One per process: computes the figures each second for every stream client."""

    def __init__(self, source: SupervisorStats) -> None:
        self.source = source
        self.subscribers: set[Subscriber] = set()
        # at most RING_S events (ids grow by at least 1), none older than RING_S seconds:
        # with nobody listening (one figure per SAMPLE_EVERY_S) that is four or five
        self.ring: deque[tuple[int, Mapping[str, Any]]] = deque(maxlen=RING_S)
        self.last_id = 0
        self.dropped_total = 0
        self._wake = asyncio.Event()
        self._last_sample = -1e9
        self._last_rollup = -1e9
        self._last_error = -1e9
        keys = source.keys
        self._lease = source.redis.lock(
            keys.sup_sampler_lease(), timeout=SAMPLER_LEASE_S, blocking=False, thread_local=False
        )

    async def hold_sampler_lease(self) -> bool:
        """Whether this process takes the samples now: it renews the lease it holds, or
        takes a free one."""
        if self._lease.local.token is not None:
            try:
                await self._lease.reacquire()
                return True
            except LockError:  # expired and maybe taken by another process
                self._lease.local.token = None
        return bool(await self._lease.acquire())

    async def release_sampler_lease(self) -> None:
        """On shutdown: another process may take the samples at once."""
        if self._lease.local.token is not None:
            with contextlib.suppress(LockError):
                await self._lease.release()

    def subscribe(self, role: str) -> Subscriber:
        sub = Subscriber(role)
        self.subscribers.add(sub)
        self._wake.set()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def remember(self, event_id: int, figures: Mapping[str, Any]) -> None:
        """Keep the event for resumption; drop the ones older than RING_S seconds."""
        if self.ring:
            previous = self.ring[-1][1]
            same = {k: previous[k] for k in SHARED_PARTS if k in previous}
            same = {k: v for k, v in same.items() if figures.get(k) == v}
            if same:
                figures = {**figures, **same}
        self.ring.append((event_id, figures))
        while self.ring[0][0] <= event_id - RING_S:
            self.ring.popleft()

    def replay(self, after_id: int, role: str) -> list[tuple[int, bytes]]:
        return [(i, encode_event(i, f, role)) for i, f in self.ring if i > after_id]

    async def run_once(self) -> Mapping[str, Any] | None:
        """Compute, publish (if anybody listens), sample, roll up when due."""
        now = time.monotonic()
        figures: Mapping[str, Any] | None = None
        due = now - self._last_sample >= SAMPLE_EVERY_S
        if self.subscribers or (due and await self.hold_sampler_lease()):
            figures = await self.source.figures()
            event_id = max(self.last_id + 1, int(figures["at_ms"]) // 1000)
            self.last_id = event_id
            self.remember(event_id, figures)
            self.publish(event_id, figures)
            await self.source.sample(figures)
            self._last_sample = now
        if now - self._last_rollup >= ROLLUP_EVERY_S and figures is not None:
            await self.source.roll_up_recent()
            self._last_rollup = now
        return figures

    def publish(self, event_id: int, figures: Mapping[str, Any]) -> None:
        by_role: dict[str, bytes] = {}
        for sub in list(self.subscribers):
            data = by_role.get(sub.role)
            if data is None:
                data = by_role[sub.role] = encode_event(event_id, figures, sub.role)
            try:
                sub.queue.put_nowait((event_id, data))
            except asyncio.QueueFull:
                # the client stopped reading: drop it rather than buffer without bound
                sub.dropped = True
                self.dropped_total += 1
                self.subscribers.discard(sub)
                log.info("stats stream client dropped: not reading")

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            started = time.monotonic()
            try:
                await self.run_once()
            except Exception:
                if time.monotonic() - self._last_error >= ERROR_LOG_EVERY_S:
                    self._last_error = time.monotonic()  # once a minute while it lasts
                    log.exception("stats broadcast failed")
            delay = max(0.05, TICK_S - (time.monotonic() - started))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay if self.subscribers else SAMPLE_EVERY_S):
                    if self.subscribers:
                        await stopping.wait()
                    else:
                        await _first(stopping, self._wake)


async def _first(*events: asyncio.Event) -> None:
    tasks = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


SUP_STATS: web.AppKey[SupervisorStats] = web.AppKey("supervisor_stats")
BROADCASTER: web.AppKey[StatsBroadcaster] = web.AppKey("supervisor_broadcaster")


# --- handlers --------------------------------------------------------------------------
async def stats_json(request: web.Request) -> web.Response:
    """The figures, refreshed in the background once `FIGURES_MAX_AGE_S` old and never
    served past `FIGURES_STALE_MAX_S` (`age_s` says how old), for the role."""
    principal = await authenticate(request, *READ_ROLES)
    _offer_streamed(request.app)
    source = request.app[SUP_STATS]
    if accepts_gzip(request.headers.get("Accept-Encoding", "")):
        # compressed once per snapshot and role; this request's age_s ends the stream.
        # One bytes body: copying ~12 KB costs less than a second send() per request
        # (the 220 KB identity body is sent in two parts instead)
        head, tail = await source.latest_json_gzip(principal.role)
        return web.Response(body=head + tail, content_type="application/json", headers=GZIP_HEADERS)
    head, tail = await source.latest_json_parts(principal.role)
    return web.Response(body=TwoPartJson(head, tail), headers=VARY_HEADERS)


VARY_HEADERS = {"Vary": "Accept-Encoding"}
GZIP_HEADERS = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
_QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding field (RFC 9110 12.5.3) takes gzip: `gzip` (or
    `x-gzip`) with a weight above 0, or else `*` with a weight above 0; a malformed
    weight counts as 0, and no field at all as identity only (today's bytes)."""
    gzip_q: float | None = None
    any_q: float | None = None
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                value = value.strip()
                q = float(value) if _QVALUE.fullmatch(value) else 0.0
        if coding in ("gzip", "x-gzip"):
            gzip_q = q if gzip_q is None else max(gzip_q, q)
        elif coding == "*":
            any_q = q if any_q is None else max(any_q, q)
    if gzip_q is not None:
        return gzip_q > 0
    return any_q is not None and any_q > 0


def _offer_streamed(app: web.Application) -> None:
    """While streams are watched the broadcaster computes the figures every second: the
    GET routes take its last event rather than computing their own."""
    broadcaster = app[BROADCASTER]
    if broadcaster.subscribers and broadcaster.ring:
        figures = broadcaster.ring[-1][1]
        if isinstance(figures, dict):
            app[SUP_STATS].offer(figures)


async def stats_stream(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request, *READ_ROLES)
    broadcaster = request.app[BROADCASTER]
    last_raw = request.headers.get("Last-Event-ID") or request.query.get("last_event_id", "")
    last_id = int(last_raw) if last_raw.isdigit() else None
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    sub = broadcaster.subscribe(principal.role)
    by_session = not request.headers.get("Authorization")
    checked = time.monotonic()
    try:
        first: list[tuple[int, bytes]] = []
        if last_id is not None:
            first = broadcaster.replay(last_id, principal.role)
        elif broadcaster.ring:
            i, f = broadcaster.ring[-1]
            first = [(i, encode_event(i, f, principal.role))]
        sent = last_id or 0
        await _write(response, b"retry: 2000\n\n")
        for i, data in first:
            await _write(response, data)
            sent = i
        while not sub.dropped:
            try:
                async with asyncio.timeout(KEEPALIVE_S):
                    item = await sub.queue.get()
            except TimeoutError:
                await _write(response, b": keep-alive\n\n")
                continue
            if item is None:
                break
            event_id, data = item
            if event_id <= sent:
                continue
            await _write(response, data)
            sent = event_id
            if by_session and time.monotonic() - checked > SESSION_RECHECK_S:
                checked = time.monotonic()
                if await read_session(request) is None:
                    break  # signed out or expired: end the stream
    except ConnectionResetError:
        pass
    except TimeoutError:
        # the client stopped reading: drop the connection, buffered bytes and all
        # (a graceful close would wait for the same client to read them)
        if request.transport is not None:
            request.transport.abort()
    finally:
        broadcaster.unsubscribe(sub)
    return response


async def _write(response: web.StreamResponse, data: bytes) -> None:
    async with asyncio.timeout(WRITE_TIMEOUT_S):
        await response.write(data)


class TwoPartJson(Payload):
    """A JSON body sent as two byte strings one after the other (the shared figures and
    this request's `age_s`), so the large shared part is not copied per request."""

    def __init__(self, head: bytes, tail: bytes) -> None:
        super().__init__(head, content_type="application/json")
        self._head, self._tail = head, tail
        self._size = len(head) + len(tail)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return (self._head + self._tail).decode(encoding, errors)

    async def write(self, writer: AbstractStreamWriter) -> None:
        await writer.write(self._head)
        await writer.write(self._tail)


class FiguresCollector(Collector):
    """Prometheus families from one figures dict (built per scrape)."""

    def __init__(self, figures: Mapping[str, Any]) -> None:
        self.figures = figures

    def collect(self) -> list[Metric]:
        f = self.figures
        queues: Mapping[str, Any] = f["queues"]
        created = day_start_ms(f["day"]) / 1000
        waiting = GaugeMetricFamily("hotline_queue_waiting", "Calls waiting now", labels=["queue"])
        longest = GaugeMetricFamily(
            "hotline_queue_longest_wait_seconds", "Longest wait now", labels=["queue"]
        )
        sl = GaugeMetricFamily(
            "hotline_queue_service_level",
            "Service level today at the queue's target (ratio; absent when undefined)",
            labels=["queue"],
        )
        agents = GaugeMetricFamily(
            "hotline_agents", "Agents by state (whole centre)", labels=["state"]
        )
        qagents = GaugeMetricFamily(
            "hotline_queue_agents", "Eligible agents by state", labels=["queue", "state"]
        )
        counters = {
            name: CounterMetricFamily(
                f"hotline_queue_{name}",
                f"Calls {name} today (UTC day; resets at 00:00 UTC)",
                labels=["queue"],
            )
            for name in ("offered", "answered", "abandoned")
        }
        hist = HistogramMetricFamily(
            "hotline_queue_wait_seconds",
            "Queue wait of calls that ended today (answered and completed, or abandoned)",
            labels=["queue", "outcome"],
        )
        for name, q in queues.items():
            waiting.add_metric([name], q["waiting"])
            longest.add_metric([name], q["longest_wait_s"])
            if q["service_level"] is not None:
                sl.add_metric([name], q["service_level"])
            for state, n in q["agents_by_state"].items():
                qagents.add_metric([name, state], n)
            for cname, fam in counters.items():
                fam.add_metric([name], q[cname], created=created)
        for state, n in f["centre"]["agents_by_state"].items():
            agents.add_metric([state], n)
        for series, h in f["wait_histogram"].items():
            queue, _, outcome = series.partition(":")
            buckets = [(_le(b), float(c)) for b, c in h["buckets"]]
            buckets.append(("+Inf", float(h["count"])))
            hist.add_metric([queue, outcome], buckets, h["sum_s"])
        return [waiting, longest, sl, agents, qagents, *counters.values(), hist]


def _le(bound: float) -> str:
    return f"{bound:g}" if bound != int(bound) else f"{int(bound)}.0"


def metrics_text(figures: Mapping[str, Any]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FiguresCollector(figures))
    return generate_latest(registry)


async def metrics_handler(request: web.Request) -> web.Response:
    await authenticate(request, *READ_ROLES)
    _offer_streamed(request.app)
    source = request.app[SUP_STATS]
    headers = {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    if accepts_gzip(request.headers.get("Accept-Encoding", "")):
        head, _ = await source.latest_gzip("metrics", metrics_text)
        body = head.body + gzip_tail(head, b"")  # small: one send() (see stats_json)
        return web.Response(body=body, headers={**headers, **GZIP_HEADERS})
    body, _ = await source.latest_encoded("metrics", metrics_text)
    return web.Response(body=body, headers={**headers, **VARY_HEADERS})


def _static(name: str) -> bytes:
    return resources.files("queueing").joinpath("dashboard", name).read_bytes()


async def dashboard(request: web.Request) -> web.StreamResponse:
    if await read_session(request) is None:
        raise web.HTTPFound("/login")
    return web.Response(body=_static("index.html"), content_type="text/html", charset="utf-8")


async def login_page(request: web.Request) -> web.Response:
    return web.Response(body=_static("login.html"), content_type="text/html", charset="utf-8")


async def static_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    suffix = name[name.rfind(".") :] if "." in name else ""
    if "/" in name or name.startswith(".") or suffix not in STATIC_TYPES or name.endswith(".html"):
        raise web.HTTPNotFound()
    try:
        body = _static(name)
    except (FileNotFoundError, IsADirectoryError):
        raise web.HTTPNotFound() from None
    return web.Response(
        body=body,
        headers={
            "Content-Type": f"{STATIC_TYPES[suffix]}; charset=utf-8",
            "Cache-Control": "no-cache",
        },
    )


@web.middleware
async def content_security_policy(
    request: web.Request, handler: Callable[[web.Request], Any]
) -> web.StreamResponse:
    """The wallboard's pages load only their own scripts, styles and data."""
    response: web.StreamResponse = await handler(request)
    if request.path in ("/dashboard", "/login"):
        # Browsers send "Origin: null" on POSTs from a no-referrer page; the CSRF check
        # needs the real origin, which same-origin still keeps from other sites.
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
            "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
    return response


def routes() -> list[web.RouteDef]:
    return [
        web.get("/login", login_page),
        web.post("/login", login),
        web.post("/logout", logout),
        web.get("/api/v1/session", session_info),
        web.get("/api/v1/stats", stats_json),
        web.get("/api/v1/stats/stream", stats_stream),
        web.get("/metrics", metrics_handler),
        web.get("/dashboard", dashboard),
        web.get("/dashboard/static/{name}", static_file),
    ]


async def _end_streams(app: web.Application) -> None:
    """On shutdown (before aiohttp waits for handlers): end every event stream now."""
    broadcaster = app.get(BROADCASTER)
    if broadcaster is None:
        return
    for sub in list(broadcaster.subscribers):
        sub.dropped = True
        with contextlib.suppress(asyncio.QueueFull):
            sub.queue.put_nowait(None)


def add_routes(app: web.Application) -> None:
    app.router.add_routes(routes())
    app.middlewares.append(content_security_policy)
    app.on_shutdown.append(_end_streams)


def supervisors_context(
    queues: QueuesConfig,
    *,
    users: SupervisorsConfig | None = None,
    run_broadcaster: bool = True,
) -> Callable[[web.Application], AbstractAsyncContextManager[None]]:
    """Reads SETTINGS, REDIS, KEYS and (if the queue wiring set it) QUEUE_STATS; otherwise
    builds its own read-only QueueStore over the same keys. `users` None: load
    `users.yaml` from the configuration directory (a missing file: tokens only)."""

    @asynccontextmanager
    async def context(app: web.Application) -> AsyncIterator[None]:
        config = users if users is not None else load_users(app[SETTINGS].config_dir / "users.yaml")
        app[SUPERVISORS] = config
        stats: QueueStats | None = app.get(QUEUE_STATS)
        if stats is None:
            store = QueueStore(app[REDIS], app[KEYS], queues)
            await store.sync_clock()
            stats = QueueStats(store)
        source = SupervisorStats(stats, app[REDIS], app[KEYS], config)
        broadcaster = StatsBroadcaster(source)
        app[SUP_STATS] = source
        app[BROADCASTER] = broadcaster
        stopping = asyncio.Event()
        task = asyncio.create_task(broadcaster.run(stopping)) if run_broadcaster else None
        try:
            yield
        finally:
            stopping.set()
            for sub in list(broadcaster.subscribers):
                sub.dropped = True
                with contextlib.suppress(asyncio.QueueFull):
                    sub.queue.put_nowait(None)
            if task is not None:
                await task
            with contextlib.suppress(Exception):  # Redis may be gone at shutdown
                await broadcaster.release_sampler_lease()
            await source.aclose()
            await stats.aclose()

    return context
