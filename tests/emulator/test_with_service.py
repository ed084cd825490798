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


# ---------------------------------------------------------------- `hotline call --json`

LANG_KEY = {"zh": "1", "en": "2", "ko": "3"}
SCENARIOS = {
    # name: (keys after the language, expect queued, expected hangup_reason)
    "balance-good-pin": (["1", "12345678#", "4321#", "9"], False, "hangup-verb"),
    "balance-bad-pin": (["1", "12345678#", "0000#", "0000#", "0000#"], True, "caller-hangup"),
    "lost-card": (["2"], True, "caller-hangup"),
    "complaint": (["4"], True, "caller-hangup"),
    "message": (["9"], False, "hangup-verb"),
    "a-person": (["0"], True, "caller-hangup"),
}


@pytest.mark.parametrize("lang", ["zh", "en", "ko"])
@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_demo_paths_as_hotline_call_json(
    voice_url: str, emu: CarrierEmulator, lang: str, name: str
) -> None:
    import argparse
    import io
    import json

    from emulator.cli import add_call_arguments, run_call

    keys, queued, reason = SCENARIOS[name]
    parser = argparse.ArgumentParser()
    add_call_arguments(parser)
    argv = ["--url", voice_url, "--json", "--patience", "20", "--from", "+8613812345678"]
    for key in [LANG_KEY[lang], *keys]:
        argv += ["--press", key]
    out = io.StringIO()
    assert await run_call(parser.parse_args(argv), emulator=emu, out=out) == 0
    data = json.loads(out.getvalue())
    outcome = data["outcome"]
    assert (outcome["queued"], outcome["hangup_reason"]) == (queued, reason), data
    assert outcome["abandoned"] is queued
    assert all(set(s) == {"node", "verbs", "heard", "input"} for s in data["steps"])
    languages = {
        h["language"] for s in data["steps"][1:] for h in s["heard"] if h["kind"] == "say"
    }
    assert languages == {{"zh": "zh-CN", "en": "en-US", "ko": "ko-KR"}[lang]}
    assert data["errors"] == [], json.dumps(data["errors"], indent=1)
