"""The wallboard in headless Chromium (Debian's `chromium`, driven over the DevTools
protocol): sign in, watch the figures change while queue events are driven through the
queue store, call back an abandoned caller, find the job in the callbacks API, and save
screenshots (bench/out/supervisors/, git-ignored) for a person to look at."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.supervisors.cdp import CHROMIUM, Page, chromium
from tests.supervisors.conftest import (
    CARE_TOKEN,
    SUP_PASSWORD,
    VIEWER_TOKEN,
    ServiceFactory,
    store_of,
)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (CI: apt-get install -y chromium)"
)
SHOTS = Path(__file__).resolve().parents[2] / "bench" / "out" / "supervisors"


def field(queue: str, name: str) -> str:
    return f"document.querySelector('[data-queue={queue}] [data-field={name}]')?.textContent"


async def _viewport(page: Page, width: int, height: int) -> None:
    await page.send(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=height,
        deviceScaleFactor=1,
        mobile=False,
    )


async def _until_shows(page: Page, expression: str, expected: str) -> float:
    """Seconds until the page shows `expected` (from now)."""
    started = time.monotonic()
    await page.wait_for(f"({expression}) === {json.dumps(expected)}", within_s=3.0)
    return time.monotonic() - started


async def test_wallboard_live_in_chromium(service: ServiceFactory, tmp_path: Path) -> None:
    client: Any = await service()
    base = f"http://{client.host}:{client.port}"
    store = store_of(client)
    await store.login("g1", ready=False)
    await store.login("k1", ready=True)
    async with chromium(tmp_path / "profile") as page:
        await _viewport(page, 1920, 1080)
        await page.send("Page.navigate", url=f"{base}/dashboard")
        await page.wait_for("location.pathname === '/login' && document.readyState === 'complete'")
        await page.eval(
            "document.getElementById('user').value = 'sup';"
            f"document.getElementById('password').value = {json.dumps(SUP_PASSWORD)};"
            "document.getElementById('sign-in').click(); true"
        )
        try:
            await page.wait_for("location.pathname === '/dashboard'")
        except TimeoutError:
            shown = await page.eval("location.href + ' ' + document.body.innerText")
            raise AssertionError(f"sign-in did not reach the wallboard: {shown}") from None
        await page.wait_for("document.getElementById('conn').textContent === 'live'")
        await page.wait_for(f"{field('general', 'waiting')} === '0'")

        # callers join: the wallboard shows them within 3 s
        latencies = []
        for i in range(3):
            await store.join(f"CAbrowser{i}", "general", info={"caller": f"+1555123400{i}"})
        latencies.append(await _until_shows(page, field("general", "waiting"), "3"))
        await store.join("CAbrowser9", "cards", info={"caller": "+15551234009"})  # k1 takes it
        latencies.append(await _until_shows(page, field("cards", "offered"), "1"))
        await asyncio.sleep(1.0)
        await store.leave("CAbrowser0")  # abandoned after ~1.5 s
        latencies.append(
            await _until_shows(page, "document.getElementById('aband-count').textContent", "1")
        )
        assert all(lat < 3.0 for lat in latencies), latencies
        prio = await page.eval(f"{field('general', 'by-priority')}")
        assert prio is not None and "P2 waiting" in prio
        numbers = await page.eval(
            "[...document.querySelectorAll('#waiting tbody td:first-child')]"
            ".map(t => t.textContent)"
        )
        assert numbers and all(n.startswith("***") for n in numbers)
        await page.wait_for("document.getElementById('chart').children.length > 5")
        await page.screenshot(SHOTS / "wallboard-1920x1080.png")

        # call back the abandoned caller from the wallboard (session + CSRF token)
        await page.eval(
            "document.querySelector('button.callback[data-call=CAbrowser0]').click(); true"
        )
        await page.wait_for(
            "document.querySelector('button.callback[data-call=CAbrowser0]')?.textContent"
            " === 'Scheduled'"
        )
        message = await page.eval("document.getElementById('cb-message').textContent")
        assert "***4000" in message
        # the stream goes on: the next event arrives and shows the abandon everywhere
        seen = await page.eval("document.body.dataset.eventId")
        await page.wait_for(f"document.body.dataset.eventId !== {json.dumps(seen)}")
        await _until_shows(page, field("general", "waiting"), "2")
        # the wallboard shows what the statistics API says
        api = await (
            await client.get("/api/v1/stats", headers={"Authorization": f"Bearer {VIEWER_TOKEN}"})
        ).json()
        centre = api["centre"]
        await _until_shows(
            page,
            "document.getElementById('c-offered').textContent",
            f"{centre['offered']} · {centre['answered']}",
        )
        await _until_shows(
            page, field("general", "offered"), str(api["queues"]["general"]["offered"])
        )
        await _viewport(page, 1366, 768)
        await asyncio.sleep(0.3)
        await page.screenshot(SHOTS / "wallboard-1366x768.png")
        assert not [c for c in page.console if "Error" in c], page.console

    jobs = await (
        await client.get("/api/v1/callbacks", headers={"Authorization": f"Bearer {CARE_TOKEN}"})
    ).json()
    (job,) = [j for j in jobs["items"] if j["phone"] == "+15551234000"]
    assert job["kind"] == "queue_callback" and job["queue"] == "general"
    assert job["status"] == "scheduled" and "CAbrowser0" in job["note"]
    (SHOTS / "latency.json").write_text(json.dumps({"update_latency_s": latencies}))


async def test_a_second_click_does_not_schedule_twice(
    service: ServiceFactory, tmp_path: Path
) -> None:
    """Two wallboards: the second supervisor's click finds the callback already scheduled."""
    client: Any = await service()
    base = f"http://{client.host}:{client.port}"
    store = store_of(client)
    await store.join("CAtwice", "general", info={"caller": "+15551239999"})
    await store.leave("CAtwice")
    bearer = {"Authorization": f"Bearer {CARE_TOKEN}"}
    created = await client.post(
        "/api/v1/callbacks",
        json={"phone": "+15551239999", "queue": "general", "kind": "queue_callback"},
        headers=bearer,
    )
    assert created.status == 201
    async with chromium(tmp_path / "profile") as page:
        await page.send("Page.navigate", url=f"{base}/login")
        await page.wait_for(
            "document.readyState === 'complete' && !!document.getElementById('user')"
        )
        await page.eval(
            "document.getElementById('user').value = 'sup';"
            f"document.getElementById('password').value = {json.dumps(SUP_PASSWORD)};"
            "document.getElementById('sign-in').click(); true"
        )
        await page.wait_for("!!document.querySelector('button.callback[data-call=CAtwice]')")
        await page.eval(
            "document.querySelector('button.callback[data-call=CAtwice]').click(); true"
        )
        await page.wait_for(
            "document.getElementById('cb-message').textContent.includes('already scheduled')"
        )
    jobs = await (await client.get("/api/v1/callbacks?phone=%2B15551239999", headers=bearer)).json()
    assert len(jobs["items"]) == 1
