"""`Recent` with stale-while-revalidate: the held value is served (with its true age) while
one refresh runs in the background, up to a hard bound past which callers wait; failures
of a background refresh are logged and the held value keeps being served within the bound.
Pure asyncio: no Redis."""

from __future__ import annotations

import asyncio
import logging

import pytest

from queueing.recent import Recent


class Source:
    """A computation whose calls are counted and which can be held open or made to fail."""

    def __init__(self) -> None:
        self.calls = 0
        self.running = 0
        self.most_at_once = 0
        self.gate: asyncio.Event | None = None
        self.fail = False

    async def __call__(self) -> int:
        self.calls += 1
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            else:
                await asyncio.sleep(0.01)
            if self.fail:
                raise ConnectionError("redis away")
            return self.calls
        finally:
            self.running -= 1


async def settle(recent: Recent[int]) -> None:
    for _ in range(200):
        if not recent.refreshing:
            break
        await asyncio.sleep(0.005)
    await asyncio.sleep(0)  # the done callback


async def test_the_first_computation_is_waited_for_by_everyone() -> None:
    src = Source()
    recent: Recent[int] = Recent(0.2, stale_max_s=5.0)
    results = await asyncio.gather(*(recent.get(src) for _ in range(20)))
    assert src.calls == 1 and {v for v, _ in results} == {1}
    assert all(0 <= age < 0.2 for _, age in results)


async def test_stale_value_served_while_one_refresh_runs() -> None:
    src = Source()
    recent: Recent[int] = Recent(0.05, stale_max_s=5.0)
    assert (await recent.get(src))[0] == 1
    await asyncio.sleep(0.08)  # older than max_age_s, well within the bound
    src.gate = asyncio.Event()
    results = await asyncio.gather(*(recent.get(src) for _ in range(30)))
    # every caller got the held value at once, with its true age, and one refresh started
    assert {v for v, _ in results} == {1}
    assert all(age >= 0.08 for _, age in results)
    assert recent.refreshing and src.calls == 2
    for _ in range(5):  # more requests during the refresh: no second refresh
        await asyncio.sleep(0.01)
        value, age = await recent.get(src)
        assert value == 1 and age >= 0.08
    assert src.calls == 2 and src.most_at_once == 1
    src.gate.set()
    await settle(recent)
    value, age = await recent.get(src)
    # its age counts from the start of the refresh (before its reads), ~0.05 s ago
    assert value == 2 and 0.04 <= age < 0.2


async def test_only_one_refresh_at_a_time_under_many_stale_readers() -> None:
    src = Source()
    recent: Recent[int] = Recent(0.02, stale_max_s=5.0)
    await recent.get(src)

    async def reader() -> None:
        for _ in range(40):
            await recent.get(src)
            await asyncio.sleep(0.003)

    await asyncio.gather(*(reader() for _ in range(20)))
    await settle(recent)
    assert src.most_at_once == 1
    assert src.calls >= 2  # it did refresh meanwhile


async def test_a_failed_background_refresh_is_logged_and_the_held_value_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    src = Source()
    recent: Recent[int] = Recent(0.05, stale_max_s=5.0, retry_s=0.05, name="test figures")
    assert (await recent.get(src))[0] == 1
    await asyncio.sleep(0.06)
    src.fail = True
    with caplog.at_level(logging.WARNING, logger="hotline.queueing"):
        value, age = await recent.get(src)  # starts the refresh that fails
        assert value == 1
        await settle(recent)
        assert recent.failures == 1
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1
        assert "test figures: refresh failed" in errors[0].getMessage()
        assert errors[0].exc_info is not None and errors[0].exc_info[0] is ConnectionError
        # the held value goes on being served, its age growing truthfully
        value, later_age = await recent.get(src)
        assert value == 1 and later_age > age
        assert src.calls == 2  # no new refresh before retry_s
        await asyncio.sleep(0.06)
        await recent.get(src)  # a second failure: counted, not logged again within a minute
        await settle(recent)
        assert recent.failures == 2 and src.calls == 3
        assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1
        src.fail = False
        await asyncio.sleep(0.06)
        assert (await recent.get(src))[0] == 1  # still the held one while it refreshes
        await settle(recent)
        value, age = await recent.get(src)
        assert value == 4 and age < 0.05
        assert any("works again after 2 failures" in r.getMessage() for r in caplog.records)


async def test_past_the_bound_callers_wait_for_the_refresh() -> None:
    src = Source()
    recent: Recent[int] = Recent(0.03, stale_max_s=0.1)
    await recent.get(src)
    await asyncio.sleep(0.12)  # past the hard bound: the held value is not served
    results = await asyncio.gather(*(recent.get(src) for _ in range(10)))
    assert {v for v, _ in results} == {2} and src.calls == 2
    assert all(age < 0.03 for _, age in results)


async def test_past_the_bound_callers_join_the_refresh_already_running() -> None:
    src = Source()
    recent: Recent[int] = Recent(0.03, stale_max_s=0.1)
    await recent.get(src)
    await asyncio.sleep(0.05)
    src.gate = asyncio.Event()
    assert (await recent.get(src))[0] == 1  # stale: served, refresh started
    await asyncio.sleep(0.07)  # the bound passes while the refresh is still running
    waiting = asyncio.gather(*(recent.get(src) for _ in range(5)))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # nobody is served a value past the bound
    src.gate.set()
    results = await waiting
    assert {v for v, _ in results} == {2} and src.calls == 2


async def test_past_the_bound_a_failed_refresh_reaches_the_waiters() -> None:
    src = Source()
    recent: Recent[int] = Recent(0.02, stale_max_s=0.05)
    await recent.get(src)
    await asyncio.sleep(0.06)
    src.fail = True
    with pytest.raises(ConnectionError):
        await recent.get(src)
    src.fail = False
    assert (await recent.get(src))[0] == 3  # the next caller starts a new refresh


async def test_a_waiter_that_goes_away_does_not_cancel_the_refresh() -> None:
    src = Source()
    src.gate = asyncio.Event()
    recent: Recent[int] = Recent(1.0, stale_max_s=5.0)
    first = asyncio.create_task(recent.get(src))
    second = asyncio.create_task(recent.get(src))
    await asyncio.sleep(0.01)
    first.cancel()
    await asyncio.wait([first])
    src.gate.set()
    assert (await second)[0] == 1 and src.calls == 1


async def test_aclose_cancels_a_refresh_in_flight() -> None:
    src = Source()
    src.gate = asyncio.Event()
    recent: Recent[int] = Recent(0.01, stale_max_s=5.0)
    recent.put(0)
    await asyncio.sleep(0.02)
    assert (await recent.get(src))[0] == 0 and recent.refreshing
    await recent.aclose()
    assert not recent.refreshing and recent.failures == 0


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError):
        Recent(1.0, stale_max_s=0.5)
    with pytest.raises(ValueError):
        Recent(-1.0)
