"""A flood of calls beyond capacity: new callers get the busy path, waiting ones are untouched.

`max_waiting` (queues.yaml, per queue) is checked inside join.lua, atomically with the
join itself, so concurrent joins from any number of processes never exceed it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from ivr.appkeys import ROUTER
from queueing.router import Router
from queueing.store import QueueFull
from tests.ivr.walker import Walker
from tests.reliability.conftest import ServiceFactory, app_of, with_max_waiting
from tests.twilio_signing import call_params, call_sid, signed_post

BUSY_EN = "All our advisers are busy"


async def walk_to_general(client: object, sid: str) -> Walker:
    caller = Walker(client, sid)  # type: ignore[arg-type]
    await caller.start()
    await caller.press("2")  # English
    caller.menu_action = caller.action()  # type: ignore[attr-defined]
    await caller.press("0")  # a person: general
    return caller


async def test_callers_beyond_max_waiting_get_the_busy_path(service_with: ServiceFactory) -> None:
    client = await service_with(lambda c: with_max_waiting(c, general=3))
    router: Router = app_of(client)[ROUTER]
    waiting = [await walk_to_general(client, call_sid(1000 + i)) for i in range(3)]
    for caller in waiting:
        assert await caller.enqueued() == "general"
    before = [await router.wait_info(c.sid) for c in waiting]
    assert [i.position if i else None for i in before] == [1, 2, 3]

    for n in range(4):  # the flood
        caller = await walk_to_general(client, call_sid(2000 + n))
        assert caller.tags() == ["Say", "Hangup"], caller.last_body
        assert caller.says()[0].startswith(BUSY_EN)
        assert await router.store.call_status(caller.sid) is None

        # a Twilio retry of the same request gets the same busy answer, no second effect
        again = await signed_post(
            client,
            caller.menu_action,  # type: ignore[attr-defined]
            call_params(caller.sid, From=caller.from_number, Digits="0"),
        )
        assert BUSY_EN in await again.text()

    after = [await router.wait_info(c.sid) for c in waiting]
    assert [i.position if i else None for i in after] == [1, 2, 3]
    assert [i.state if i else None for i in after] == ["waiting"] * 3

    # the refused call's end is counted as refused, not as a transfer or an abandon
    response = await signed_post(
        client, "/status", call_params(call_sid(2000), CallStatus="completed", CallDuration="9")
    )
    assert response.status == 204
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    outcomes = await router.store.redis.hgetall(router.store.keys.call_outcomes(day))
    assert outcomes == {"refused_busy": "1"}

    # a waiting caller hangs up: there is room again
    await router.leave(waiting[0].sid, "abandoned")
    late = await walk_to_general(client, call_sid(3000))
    assert await late.enqueued() == "general"


async def test_capacity_holds_under_concurrent_joins(service_with: ServiceFactory) -> None:
    client = await service_with(lambda c: with_max_waiting(c, general=5))
    router: Router = app_of(client)[ROUTER]

    async def join(n: int) -> bool:
        try:
            await router.join(call_sid(4000 + n), "general")
        except QueueFull:
            return False
        return True

    accepted = await asyncio.gather(*(join(n) for n in range(40)))
    assert sum(accepted) == 5
    # a callback keeping its place re-joins even when the queue is full
    await router.join(call_sid(4999), "general", keep_joined_ms=router.store.now_ms() - 1000)
    assert (await router.wait_info(call_sid(4999))) is not None


async def test_no_limit_configured_means_no_refusal(service_with: ServiceFactory) -> None:
    client = await service_with()
    for n in range(6):
        caller = await walk_to_general(client, call_sid(5000 + n))
        assert await caller.enqueued() == "general"
