from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from config.calendar import Calendar, TimeRange
from config.loader import HotlineConfig, load_config
from config.settings import Settings
from hotline.app import create_app
from ivr.accounts import FileAccountBackend
from tests.twilio_signing import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
ALWAYS = (TimeRange(__import__("datetime").time(0, 0), __import__("datetime").time.max),)


@pytest.fixture(scope="session")
def demo_config() -> HotlineConfig:
    return load_config(CONFIG_DIR)


def with_calendar(
    config: HotlineConfig, *, open_: bool, holiday_today: bool = False
) -> HotlineConfig:
    """The demo configuration with every calendar always open (or always closed)."""
    import datetime as dt

    calendars = {}
    for name, cal in config.calendars.items():
        weekly = tuple(ALWAYS if open_ else () for _ in range(7))
        holidays = (
            frozenset({dt.datetime.now(dt.UTC).astimezone(cal.zone).date()})
            if holiday_today
            else frozenset()
        )
        calendars[name] = Calendar(
            name=name, timezone=cal.timezone, weekly=weekly, holidays=holidays
        )
    return dataclasses.replace(config, calendars=calendars)


@pytest.fixture(scope="session")
def accounts() -> FileAccountBackend:
    return FileAccountBackend.load(CONFIG_DIR / "accounts.yaml")


def make_settings(redis_url: str, key_prefix: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "public_url": PUBLIC_URL,
        "redis_url": redis_url,
        "key_prefix": key_prefix,
        "json_logs": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


AppFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]


@pytest.fixture
def service(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]],  # type: ignore[type-arg]
    redis_url: str,
    key_prefix: str,
    demo_config: HotlineConfig,
    accounts: FileAccountBackend,
) -> AppFactory:
    """Start the real service (real Redis) with the demo menus; calendars open unless told."""

    async def start(
        *, open_: bool = True, holiday_today: bool = False, **overrides: object
    ) -> TestClient:  # type: ignore[type-arg]
        config = with_calendar(demo_config, open_=open_, holiday_today=holiday_today)
        settings = make_settings(overrides.pop("redis_url", redis_url), key_prefix, **overrides)  # type: ignore[arg-type]
        return await aiohttp_client(create_app(settings, config, accounts))

    return start
