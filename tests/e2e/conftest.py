"""The real service and the carrier emulator wired together, as in production: Twilio
webhooks go to the service, the service's REST calls go to the emulator."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from config.loader import HotlineConfig, load_config
from config.settings import Settings
from emulator import CarrierEmulator
from hotline.app import create_app
from ivr.accounts import FileAccountBackend
from queueing.appkeys import QUEUE_ROUTER
from queueing.router import Router
from tests.ivr.conftest import with_calendar

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
ACCOUNT_SID = "AC" + "3" * 32
AUTH_TOKEN = "e2e-queue-token-0123456789"
SPEEDUP = 40.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Line:
    emu: CarrierEmulator
    app: web.Application
    voice_url: str
    config: HotlineConfig

    @property
    def router(self) -> Router:
        return self.app[QUEUE_ROUTER]


def fast_wrap_up(config: HotlineConfig) -> HotlineConfig:
    """Wrap-up is service time, not scaled by the emulator: keep it short in tests."""
    queues = {
        name: dataclasses.replace(q, wrap_up_s=1.0) for name, q in config.queues.queues.items()
    }
    return dataclasses.replace(config, queues=dataclasses.replace(config.queues, queues=queues))


@dataclass(frozen=True)
class Wired:
    """A service and the emulator playing Twilio for it, as in production."""

    emu: CarrierEmulator
    emu_runner: web.AppRunner
    app: web.Application
    base_url: str


async def wire_service(
    aiohttp_server: Any,
    redis_url: str,
    key_prefix: str,
    config: HotlineConfig,
    *,
    account_sid: str = ACCOUNT_SID,
    auth_token: str = AUTH_TOKEN,
    speedup: float = SPEEDUP,
    api_tokens: dict[str, str] | None = None,
    **app_options: Any,
) -> Wired:
    """Start the emulator, then the service with Twilio's REST API pointed at it."""
    emu = CarrierEmulator(account_sid, auth_token, speedup=speedup)
    emu_runner = await emu.serve("127.0.0.1", 0)
    port = free_port()
    settings = Settings(
        account_sid=account_sid,
        auth_token=auth_token,
        public_url=f"http://127.0.0.1:{port}",
        redis_url=redis_url,
        key_prefix=key_prefix,
        twilio_api_base=emu.public_url,
        api_tokens=api_tokens or {},
        json_logs=False,
    )
    accounts = FileAccountBackend.load(CONFIG_DIR / "accounts.yaml")
    app = create_app(settings, config, accounts, **app_options)
    await aiohttp_server(app, port=port)
    return Wired(emu, emu_runner, app, f"http://127.0.0.1:{port}")


@pytest.fixture
async def line(aiohttp_server: Any, redis_url: str, key_prefix: str) -> AsyncIterator[Line]:
    config = fast_wrap_up(with_calendar(load_config(CONFIG_DIR), open_=True))
    wired = await wire_service(aiohttp_server, redis_url, key_prefix, config)
    emu = wired.emu
    try:
        yield Line(emu, wired.app, f"{wired.base_url}/voice", config)
    finally:
        await emu.close()
        await wired.emu_runner.cleanup()
    assert emu.internal_errors == []
