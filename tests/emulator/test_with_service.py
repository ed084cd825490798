"""The emulator driving the real service (keypad demo menus), end to end over HTTP."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from config.loader import load_config
from config.settings import Settings
from emulator import CallerScript, CarrierEmulator
from hotline.app import create_app
from ivr.accounts import FileAccountBackend
from tests.ivr.conftest import with_calendar

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
ACCOUNT_SID = "AC" + "2" * 32
AUTH_TOKEN = "e2e-auth-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def voice_url(aiohttp_server: Any, redis_url: str, key_prefix: str) -> AsyncIterator[str]:
    port = free_port()
    settings = Settings(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        public_url=f"http://127.0.0.1:{port}",
        redis_url=redis_url,
        key_prefix=key_prefix,
        json_logs=False,
    )
    config = with_calendar(load_config(CONFIG_DIR), open_=True)
    accounts = FileAccountBackend.load(CONFIG_DIR / "accounts.yaml")
    await aiohttp_server(create_app(settings, config, accounts), port=port)
    yield f"http://127.0.0.1:{port}/voice"


@pytest.fixture
async def emu() -> AsyncIterator[CarrierEmulator]:
    emulator = CarrierEmulator(ACCOUNT_SID, AUTH_TOKEN, speedup=200)
    try:
        yield emulator
    finally:
        await emulator.close()
    assert emulator.internal_errors == []


async def test_balance_in_english(voice_url: str, emu: CarrierEmulator) -> None:
    call = await emu.place_inbound_call(
        voice_url=voice_url, from_="+8613812345678", to="+8640012345",
        script=CallerScript.of(["2", "1", "12345678", "4321", "3", "9"]),
    )
    tr = await call.wait_finished(30)
    heard = tr.heard_text()
    assert "Your available balance is 12,850.40 yuan." in heard
    assert heard[-1] == "Thank you for calling. Goodbye."
    assert tr.outcome.hangup_reason == "hangup-verb"
    assert emu.errors == []


async def test_a_person_then_giving_up(voice_url: str, emu: CarrierEmulator) -> None:
    call = await emu.place_inbound_call(
        voice_url=voice_url, from_="+8613812345678", to="+8640012345",
        script=CallerScript(presses=("2", "4"), patience=40),
    )
    tr = await call.wait_finished(30)
    assert tr.outcome.queued and tr.outcome.abandoned
    assert tr.outcome.hangup_reason == "caller-hangup"
