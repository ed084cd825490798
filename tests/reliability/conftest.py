"""Shared fixtures of the reliability tests: the real service with an adjustable config."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from config.loader import HotlineConfig
from hotline.app import create_app
from ivr.accounts import FileAccountBackend
from tests.ivr.conftest import accounts, demo_config, make_settings, with_calendar

__all__ = ["accounts", "demo_config"]

ServiceFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]


def app_of(client: TestClient) -> web.Application:  # type: ignore[type-arg]
    server = client.server
    assert isinstance(server, TestServer) and server.app is not None
    return server.app


def with_max_waiting(config: HotlineConfig, **limits: int | None) -> HotlineConfig:
    """The config with `max_waiting` set per queue (name=limit)."""
    queues = dict(config.queues.queues)
    for name, limit in limits.items():
        queues[name] = dataclasses.replace(queues[name], max_waiting=limit)
    return dataclasses.replace(config, queues=dataclasses.replace(config.queues, queues=queues))


@pytest.fixture
def service_with(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]],  # type: ignore[type-arg]
    redis_url: str,
    key_prefix: str,
    demo_config: HotlineConfig,
    accounts: FileAccountBackend,
) -> ServiceFactory:
    """Start the service on the demo menus (calendars open) with a config transform."""

    async def start(
        transform: Callable[[HotlineConfig], HotlineConfig] = lambda c: c,
        *,
        run_workers: bool = False,
        **overrides: object,
    ) -> TestClient:  # type: ignore[type-arg]
        config = transform(with_calendar(demo_config, open_=True))
        settings = make_settings(
            str(overrides.pop("redis_url", redis_url)), key_prefix, **overrides
        )
        app = create_app(settings, config, accounts, run_workers=run_workers)
        return await aiohttp_client(app)

    return start
