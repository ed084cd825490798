"""The agent transition table: one table, and the Lua scripts refuse what it refuses."""

from __future__ import annotations

import json
import re

import pytest
import redis.asyncio as aioredis

from config.keys import Keys
from queueing.agents import (
    LOCKED,
    TRANSITIONS,
    AgentState,
    can_request,
    can_transition,
    lua_transition_table,
)
from queueing.store import InvalidTransition, QueueStore
from tests.queueing.test_store_support import make_store

S = AgentState


def test_table_covers_every_state() -> None:
    assert set(TRANSITIONS) == set(AgentState)
    for targets in TRANSITIONS.values():
        assert targets <= set(AgentState)


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        (S.OFFLINE, S.READY, True),
        (S.OFFLINE, S.ON_CALL, False),
        (S.READY, S.RESERVED, True),
        (S.READY, S.ON_CALL, False),
        (S.RESERVED, S.ON_CALL, True),
        (S.RESERVED, S.OFFLINE, False),
        (S.ON_CALL, S.WRAP_UP, True),
        (S.ON_CALL, S.OFFLINE, False),
        (S.ON_CALL, S.NOT_READY, False),
        (S.WRAP_UP, S.READY, True),
        (S.WRAP_UP, S.RESERVED, False),
        (S.NOT_READY, S.RESERVED, False),
        (S.NOT_READY, S.NOT_READY, True),
    ],
)
def test_can_transition(current: AgentState, new: AgentState, allowed: bool) -> None:
    assert can_transition(current, new) is allowed


def test_agent_cannot_leave_ringing_or_talking_by_request() -> None:
    assert set(LOCKED) == {S.RESERVED, S.ON_CALL}
    assert can_transition(S.RESERVED, S.NOT_READY)  # the system may (no answer)
    assert not can_request(S.RESERVED, S.NOT_READY)  # the agent may not
    assert can_request(S.WRAP_UP, S.NOT_READY)


def test_lua_table_is_rendered_from_the_python_table() -> None:
    text = lua_transition_table()
    assert "local LOCKED = { on_call = true, reserved = true }" in text
    for state, targets in TRANSITIONS.items():
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"{state.value} ="))
        for target in AgentState:
            present = re.search(rf"(?<![a-z_]){target.value} = true", line) is not None
            assert present is (target in targets)


OPS = {"ready": S.READY, "not_ready": S.NOT_READY, "logout": S.OFFLINE}


@pytest.fixture
async def store(redis: aioredis.Redis, keys: Keys) -> QueueStore:
    s = make_store(redis, keys)
    await s.sync_clock()
    return s


@pytest.mark.parametrize("current", [s for s in AgentState if s is not S.OFFLINE])
@pytest.mark.parametrize("op", sorted(OPS))
async def test_lua_enforces_the_table(
    store: QueueStore, redis: aioredis.Redis, current: AgentState, op: str
) -> None:
    await store.login("g1")
    key = store.keys.route_agents("t")
    record = json.loads(await redis.hget(key, "g1"))
    record["s"] = current.value
    await redis.hset(key, "g1", json.dumps(record))
    target = OPS[op]
    allowed = can_request(current, target)
    call = getattr(store, op)
    if allowed:
        result = await call("g1")
        assert result.state == target.value
    else:
        with pytest.raises(InvalidTransition) as info:
            await call("g1")
        assert info.value.details["from"] == current.value
        assert info.value.details["to"] == target.value
        assert json.loads(await redis.hget(key, "g1"))["s"] == current.value


async def test_logout_refused_while_ringing_or_talking(store: QueueStore) -> None:
    await store.login("g1", ready=True)
    (p,) = (await store.join("CA1", "general")).pairings
    with pytest.raises(InvalidTransition):
        await store.logout("g1")
    await store.answer("CA1", p.reservation)
    with pytest.raises(InvalidTransition):
        await store.logout("g1")
    with pytest.raises(InvalidTransition):
        await store.not_ready("g1", "break")
    await store.complete("CA1")  # general has no wrap-up: straight to ready
    assert (await store.logout("g1")).state == "offline"
