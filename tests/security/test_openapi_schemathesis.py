"""schemathesis against /api/v1/openapi.json: every operation of the documented API,
with generated valid and invalid inputs, answers no 5xx and only what the document
promises (status codes, content types, response schemas).

The service runs in a thread of its own (schemathesis calls it synchronously) on the
real Redis with a fresh key prefix; a supervisor bearer token is sent with each case.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis  # in the test extra of pyproject.toml
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.loader import load_config
from hotline.app import create_app
from ivr.accounts import FileAccountBackend
from tests.e2e.conftest import free_port
from tests.ivr.conftest import make_settings, with_calendar
from tests.redis_clients import sync_client

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
TOKEN = "schemathesis-supervisor-token"


@pytest.fixture(scope="module")
def live_url(redis_url: str) -> Iterator[str]:
    prefix = f"hltest:{uuid.uuid4().hex[:10]}:"
    port = free_port()
    settings_ = make_settings(
        redis_url, prefix, public_url=f"http://127.0.0.1:{port}", api_tokens={TOKEN: "supervisor"}
    )
    config = with_calendar(load_config(CONFIG_DIR), open_=True)
    accounts = FileAccountBackend.load(CONFIG_DIR / "accounts.yaml")
    app = create_app(settings_, config, accounts, run_workers=False)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(20)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(20)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        client = sync_client(redis_url)
        for key in client.scan_iter(match=f"{prefix}*", count=500):
            client.unlink(key)
        client.close()


def test_the_api_does_what_its_openapi_document_says(live_url: str) -> None:
    # loaded from the service itself: the document it serves, and its base URL
    api = schemathesis.openapi.from_url(f"{live_url}/api/v1/openapi.json")
    failures: dict[str, str] = {}
    operations = 0
    for result in api.get_all_operations():
        if not isinstance(result, Ok):  # a part of the document schemathesis cannot read
            failures[f"schema #{operations}"] = str(result.err())
            continue
        operation = result.ok()
        operations += 1

        @settings(
            max_examples=15,
            deadline=None,
            derandomize=True,  # the same cases each run: the default suite must not flake
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response = case.call(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
            case.validate_response(
                response,
                checks=(
                    not_a_server_error,
                    status_code_conformance,
                    content_type_conformance,
                    response_schema_conformance,
                ),
            )

        try:
            run()
        except Exception as exc:  # collect every operation's first failure, then report
            failures[operation.label] = str(exc)[:1500]
    assert operations >= 12
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())


def test_an_offset_past_redis_integers_is_a_named_422(live_url: str) -> None:
    """Found by schemathesis: /api/v1/cases?offset=1255151439887031303606894592 answered
    500 (the number reached ZRANGE)."""
    for path in ("/api/v1/cases", "/api/v1/surveys"):
        response = requests.get(
            f"{live_url}{path}?offset={10**27}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
        assert response.status_code == 422, (path, response.text)
        assert set(response.json()["fields"]) == {"offset"}
