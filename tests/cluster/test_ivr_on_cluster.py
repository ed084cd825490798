"""The IVR webhook core path against a 3-master Redis Cluster (the service opened with a
`redis+cluster://` URL): a call through /voice and two keypad steps, and Twilio's retry of a
step answered from the stored step without moving the call twice."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from redis.asyncio.cluster import RedisCluster

from config.keys import Keys
from config.loader import HotlineConfig, load_config
from hotline.app import create_app
from ivr.accounts import FileAccountBackend
from tests.ivr.conftest import CONFIG_DIR, make_settings, with_calendar
from tests.ivr.walker import Walker
from tests.twilio_signing import call_params, call_sid, signed_post

pytestmark = pytest.mark.cluster

ClientFactory = Callable[[web.Application], Awaitable[TestClient]]  # type: ignore[type-arg]


@pytest.fixture(scope="module")
def demo() -> tuple[HotlineConfig, FileAccountBackend]:
    config = with_calendar(load_config(CONFIG_DIR), open_=True)
    return config, FileAccountBackend.load(CONFIG_DIR / "accounts.yaml")


async def test_call_through_voice_and_keypad_steps_with_a_retry(
    aiohttp_client: ClientFactory,
    cluster_url: str,
    cluster_prefix: str,
    cluster: RedisCluster,
    demo: tuple[HotlineConfig, FileAccountBackend],
) -> None:
    config, accounts = demo
    settings = make_settings(cluster_url, cluster_prefix)
    client = await aiohttp_client(create_app(settings, config, accounts, run_workers=False))
    sid = call_sid(0xC1)
    caller = Walker(client, sid)

    await caller.start()
    assert caller.gather_node() == "language"
    first_step = caller.action()
    await caller.press("2")
    assert caller.gather_node() == "main"
    answer = caller.last_body

    # Twilio retries the same step (same s=): the stored answer, the session not moved again
    retry = await signed_post(client, first_step, call_params(sid, Digits="2"))
    assert retry.status == 200
    assert await retry.text() == answer
    keys = Keys(prefix=cluster_prefix)
    stored = await cluster.hgetall(keys.call_session(sid))
    assert stored["seq"] == "1"

    await caller.press("3")
    assert "Monday to Friday" in caller.says()[0]
    assert caller.gather_node() == "anything_else"

    # a repeated /voice is answered from step 0, not a new session
    again = await signed_post(client, "/voice", call_params(sid))
    assert "For English, press 2." in await again.text()
    stored = await cluster.hgetall(keys.call_session(sid))
    assert stored["seq"] == "2"
    assert (await client.get("/readyz")).status == 200
