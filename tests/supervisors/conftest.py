"""The real service (hotline.app.create_app) on a real Redis, with users of cheap scrypt
hashes and a queue configuration whose targets are seconds, so tests script waits."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from config.loader import HotlineConfig, load_config
from config.settings import Settings
from config.users import hash_password
from hotline.app import create_app
from ivr.accounts import FileAccountBackend
from queueing.store import QueueStore
from queueing.supervisor_api import BROADCASTER, SUP_STATS, StatsBroadcaster
from queueing.supervisor_stats import SupervisorStats
from tests.queueing.test_store_support import test_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
SUP_PASSWORD = "correct horse battery"
VIEW_PASSWORD = "viewer staple"
CARE_TOKEN = "care-token-0123456789"
VIEWER_TOKEN = "viewer-token-0123456789"


def users_yaml(*, ttl_s: int = 3600, per_user: int = 3, per_client: int = 50) -> str:
    cheap = {"n": 2**10, "r": 8, "p": 1}  # verification reads the cost from the hash
    return f"""
users:
  sup: {{role: supervisor, password_hash: "{hash_password(SUP_PASSWORD, **cheap)}"}}
  view: {{role: viewer, password_hash: "{hash_password(VIEW_PASSWORD, **cheap)}"}}
sessions: {{ttl_s: {ttl_s}}}
signin_limits: {{per_client: {per_client}, per_user: {per_user}, window_s: 60}}
dashboard: {{amber_s: 20, red_s: 30}}
statistics: {{retention_days: 40}}
"""


@pytest.fixture(scope="session")
def demo_config() -> HotlineConfig:
    config = load_config(CONFIG_DIR)
    return dataclasses.replace(config, queues=test_config())


@pytest.fixture(scope="session")
def accounts() -> FileAccountBackend:
    return FileAccountBackend.load(CONFIG_DIR / "accounts.yaml")


ServiceFactory = Callable[..., Awaitable[Any]]


@pytest.fixture
def service(
    aiohttp_client: Callable[..., Awaitable[Any]],
    redis_url: str,
    key_prefix: str,
    demo_config: HotlineConfig,
    accounts: FileAccountBackend,
    tmp_path: Path,
) -> ServiceFactory:
    async def start(*, public_url: str = "http://127.0.0.1:8080", **users: Any) -> Any:
        (tmp_path / "users.yaml").write_text(users_yaml(**users), encoding="utf-8")
        settings = Settings(
            redis_url=redis_url,
            key_prefix=key_prefix,
            public_url=public_url,
            config_dir=tmp_path,
            json_logs=False,
            api_tokens={CARE_TOKEN: "care", VIEWER_TOKEN: "viewer"},
        )
        app: web.Application = create_app(settings, demo_config, accounts, run_workers=False)
        return await aiohttp_client(app)

    return start


def sup_stats(client: Any) -> SupervisorStats:
    source: SupervisorStats = client.app[SUP_STATS]
    return source


def broadcaster(client: Any) -> StatsBroadcaster:
    b: StatsBroadcaster = client.app[BROADCASTER]
    return b


def store_of(client: Any) -> QueueStore:
    return sup_stats(client).store


def origin(client: Any) -> str:
    return f"http://{client.host}:{client.port}"


async def sign_in(client: Any, user: str = "sup", password: str = SUP_PASSWORD) -> str:
    """Sign in with JSON; returns the CSRF token (the cookie stays in the client's jar)."""
    resp = await client.post(
        "/login", json={"user": user, "password": password}, headers={"Origin": origin(client)}
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    return str(body["csrf_token"])
