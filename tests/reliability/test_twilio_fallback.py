"""A webhook answered too late: Twilio (the emulator, its timeout shortened from 15 s to
1 s) gives up on the primary URL and asks the fallback URL, which must serve the caller.

The service is slowed the realistic way: its Redis stalls (CLIENT PAUSE on a redis-server
of the test's own), so /voice hangs past the timeout; /fallback needs no Redis, checks the
emulator's signature over the fallback URL, and sends the caller to a person.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from config.loader import load_config
from config.settings import Settings
from emulator import CallerScript, CarrierEmulator
from hotline.app import create_app
from ivr.accounts import FileAccountBackend
from tests.e2e.conftest import ACCOUNT_SID, AUTH_TOKEN, CONFIG_DIR, fast_wrap_up, free_port
from tests.ivr.conftest import with_calendar
from tests.reliability.redis_proc import RedisProc

EMERGENCY = "+8610950000"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProc]:
    server = RedisProc(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_webhook_past_the_timeout_is_served_by_the_fallback_url(
    aiohttp_server: Any, own_redis: RedisProc
) -> None:
    emu = CarrierEmulator(ACCOUNT_SID, AUTH_TOKEN, speedup=40, webhook_timeout=1.0)
    emu_runner = await emu.serve("127.0.0.1", 0)
    port = free_port()
    settings = Settings(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        public_url=f"http://127.0.0.1:{port}",
        redis_url=own_redis.url,
        key_prefix="fb:",
        twilio_api_base=emu.public_url,
        emergency_number=EMERGENCY,
        json_logs=False,
    )
    config = fast_wrap_up(with_calendar(load_config(CONFIG_DIR), open_=True))
    accounts = FileAccountBackend.load(CONFIG_DIR / "accounts.yaml")
    await aiohttp_server(create_app(settings, config, accounts, run_workers=False), port=port)
    base = f"http://127.0.0.1:{port}"
    stall = redis.Redis(port=own_redis.port)
    try:
        stall.client_pause(3000, all=True)  # Redis stalls for 3 s
        call = await emu.place_inbound_call(
            voice_url=f"{base}/voice",
            fallback_url=f"{base}/fallback",
            from_="+8613812345678",
            to="+8640012345",
            script=CallerScript(presses=(), hangup_after=5),
        )
        transcript = await call.wait_finished(30)
    finally:
        stall.close()
        await emu.close()
        await emu_runner.cleanup()
    assert call.used_fallback
    assert any(e.get("code") in {11205, "11205"} for e in transcript.errors), transcript.errors
    heard = " ".join(transcript.heard_text())
    assert "technical difficulties" in heard
    first = transcript.to_json()["steps"][0]
    assert first["node"] == f"{base}/fallback"  # the fallback document served the caller
    assert first["verbs"][-1] == "Dial"  # to the emergency number, a person
    assert "application error" not in heard  # the emulator's "no fallback worked" message
