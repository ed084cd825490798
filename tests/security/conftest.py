"""The whole service as production wires it (speech on, with no model: every route
exists), on a real Redis with the test's key prefix."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from config.loader import HotlineConfig
from hotline.app import create_app
from ivr.accounts import FileAccountBackend
from ivr.voice import SpeechSetup
from speech.recognizer import ModelRegistry
from speech.settings import SpeechSettings
from tests.ivr.conftest import accounts, demo_config, make_settings, with_calendar

__all__ = ["accounts", "demo_config"]

FullService = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]


@pytest.fixture
def full_service(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]],  # type: ignore[type-arg]
    redis_url: str,
    key_prefix: str,
    demo_config: HotlineConfig,
    accounts: FileAccountBackend,
    tmp_path: Path,
) -> FullService:
    async def start(**overrides: object) -> TestClient:  # type: ignore[type-arg]
        speech = SpeechSetup(
            settings=SpeechSettings(prompt_dir=tmp_path / "prompts"),
            registry=ModelRegistry(),
            render_at_startup=False,
        )
        settings = make_settings(redis_url, key_prefix, **overrides)
        config = with_calendar(demo_config, open_=True)
        app = create_app(settings, config, accounts, run_workers=False, speech=speech)
        return await aiohttp_client(app)

    return start
