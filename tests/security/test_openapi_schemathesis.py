"""schemathesis against /api/v1/openapi.json: every operation of the documented APIs,
with generated valid and invalid inputs, for every role the operation accepts (its
`x-roles`, by bearer token; and the supervisors' session cookie with its CSRF token where
the operation accepts a session). Each answer must be no 5xx, a status the document lists,
of the documented content type and schema; invalid input must be refused with a 4xx.

The service runs in a thread of its own (schemathesis calls it synchronously) on the
real Redis with a fresh key prefix. The number of examples per operation and credential
is bounded (EXAMPLES) and derandomized, so the run is the same each time and short.
The event stream never ends, so it is checked by hand (test_the_stream_...).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis  # in the test extra of pyproject.toml
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from config.loader import load_config
from hotline.app import create_app
from ivr.accounts import FileAccountBackend
from tests.e2e.conftest import free_port
from tests.ivr.conftest import make_settings, with_calendar
from tests.redis_clients import sync_client
from tests.supervisors.conftest import SUP_PASSWORD, users_yaml

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
TOKENS = {
    "supervisor": "schemathesis-supervisor-token",
    "care": "schemathesis-care-token",
    "viewer": "schemathesis-viewer-token",
    "agent": "schemathesis-agent-token",
}
AGENT_OWN_TOKEN = "demo-agent-a01-token"  # queues.yaml: agent a01's own token
EXAMPLES = {GenerationMode.POSITIVE: 8, GenerationMode.NEGATIVE: 8}
STREAM = "/api/v1/stats/stream"
LAST = ("/logout",)  # ends the session the other operations use


@dataclass
class Live:
    url: str
    session_cookie: dict[str, str] = field(default_factory=dict)
    csrf: str = ""


@pytest.fixture(scope="module")
def live(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    prefix = f"hltest:{uuid.uuid4().hex[:10]}:"
    port = free_port()
    config_dir = tmp_path_factory.mktemp("config") / "config"
    shutil.copytree(CONFIG_DIR, config_dir)
    (config_dir / "users.yaml").write_text(users_yaml(per_client=1000), encoding="utf-8")
    settings_ = make_settings(
        redis_url,
        prefix,
        public_url=f"http://127.0.0.1:{port}",
        api_tokens={token: role for role, token in TOKENS.items()},
        config_dir=config_dir,
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
    url = f"http://127.0.0.1:{port}"
    try:
        yield Live(url, *sign_in(url))
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(20)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        client = sync_client(redis_url)
        for key in client.scan_iter(match=f"{prefix}*", count=500):
            client.unlink(key)
        client.close()


def sign_in(url: str) -> tuple[dict[str, str], str]:
    """A supervisor's session: its cookie and CSRF token."""
    signed = requests.post(
        f"{url}/login",
        json={"user": "sup", "password": SUP_PASSWORD},
        headers={"Origin": url},
        timeout=10,
    )
    assert signed.status_code == 200, signed.text
    cookies = {name: str(value) for name, value in signed.cookies.get_dict().items()}
    return cookies, str(signed.json()["csrf_token"])


@dataclass(frozen=True)
class Credential:
    name: str
    headers: dict[str, str]
    cookies: dict[str, str]


def credentials(raw: dict[str, Any], path: str, live: Live) -> list[Credential]:
    """A valid credential for each role the operation (as served) accepts, and the
    session if it accepts one (anonymous when it needs none)."""
    security = raw.get("security", [{"bearer": []}])
    schemes = {name for requirement in security for name in requirement}
    out: list[Credential] = []
    if "bearer" in schemes:
        for role in dict.fromkeys([*raw.get("x-roles", []), "supervisor"]):
            token = TOKENS[role]
            if role == "agent" and path.startswith("/api/agents"):
                token = AGENT_OWN_TOKEN  # the agents API wants an agent's own token
            out.append(Credential(role, {"Authorization": f"Bearer {token}"}, {}))
    if "session" in schemes:
        headers = {"Origin": live.url}
        if "csrf" in schemes:
            headers["X-CSRF-Token"] = live.csrf
        out.append(Credential("session", headers, live.session_cookie))
    if not security or {} in security:
        out.append(Credential("anonymous", {}, {}))
    return out


def fuzzable(document: dict[str, Any]) -> dict[str, Any]:
    """The document without its security requirements: the test sends valid credentials
    itself (schemathesis would otherwise generate and drop the Authorization header and
    the cookie as inputs; refusals without them are test_route_auth.py's)."""
    doc: dict[str, Any] = json.loads(json.dumps(document))
    doc.pop("security", None)
    for item in doc["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict):
                operation.pop("security", None)
    return doc


def media_types(operation: Any) -> list[str | None]:
    body = operation.definition.raw.get("requestBody")
    return list(body["content"]) if body else [None]


def _run(
    operation: Any,
    credential: Credential,
    mode: GenerationMode,
    media_type: str | None,
    base_url: str,
) -> None:
    checks: tuple[Any, ...] = (
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    )
    if mode is GenerationMode.NEGATIVE:
        checks = (*checks, negative_data_rejection)

    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        derandomize=True,  # the same cases each run: the default suite must not flake
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=operation.as_strategy(generation_mode=mode, media_type=media_type))
    def run(case: Any) -> None:
        case.headers = {**(case.headers or {}), **credential.headers}
        response = case.call(
            base_url=base_url, cookies=credential.cookies, timeout=30, allow_redirects=False
        )
        case.validate_response(response, checks=checks)

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # nothing to make invalid: the operation takes no input (POST /logout)


def describe(exc: BaseException) -> str:
    """The failure and, for a group (Hypothesis's "flaky"), the failures inside it."""
    text = str(exc)[:1500]
    if isinstance(exc, BaseExceptionGroup):
        text += "".join(f"\n  - {describe(inner)}" for inner in exc.exceptions[:3])
    return text


def test_the_api_does_what_its_openapi_document_says(live: Live) -> None:
    # loaded from the service itself: the document it serves, and its base URL
    document = requests.get(f"{live.url}/api/v1/openapi.json", timeout=10).json()
    api = schemathesis.openapi.from_dict(fuzzable(document))
    raw_ops = {
        (path, method.upper()): op
        for path, item in document["paths"].items()
        for method, op in item.items()
    }
    failures: dict[str, str] = {}
    operations: list[Any] = []
    for result in api.get_all_operations():
        if not isinstance(result, Ok):  # a part of the document schemathesis cannot read
            failures[f"schema #{len(operations)}"] = str(result.err())
            continue
        operations.append(result.ok())
    operations.sort(key=lambda op: op.path in LAST)
    ran = 0
    for operation in operations:
        if operation.path == STREAM:
            continue
        served = raw_ops[(operation.path, operation.method.upper())]
        allowed = credentials(served, operation.path, live)
        for credential, mode, media_type in product(allowed, EXAMPLES, media_types(operation)):
            if mode is GenerationMode.NEGATIVE and media_type not in (None, "application/json"):
                continue  # a form or CSV body is text: any value is serialised to some text
            if mode is GenerationMode.NEGATIVE and credential != allowed[0]:
                continue  # input checks come before roles matter: one credential is enough
            label = f"{operation.label} {media_type or ''} as {credential.name} ({mode.value})"
            try:
                _run(operation, credential, mode, media_type, live.url)
            except (Exception, BaseExceptionGroup) as exc:  # collect all, then report
                failures[label] = describe(exc)
            ran += 1
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    assert len(operations) >= 28 and ran >= 80, (len(operations), ran)


def test_the_stream_answers_events_for_each_credential(live: Live) -> None:
    """The one documented operation schemathesis cannot call (the response never ends)."""
    url = f"{live.url}{STREAM}"
    cookie, _ = sign_in(live.url)  # the fuzzing above may have signed the first one out
    for headers, cookies in (
        ({"Authorization": f"Bearer {TOKENS['viewer']}"}, {}),
        ({"Authorization": f"Bearer {TOKENS['supervisor']}", "Last-Event-ID": "x" * 40}, {}),
        ({"Last-Event-ID": str(10**30)}, cookie),
    ):
        with requests.get(url, headers=headers, cookies=cookies, stream=True, timeout=10) as r:
            assert r.status_code == 200
            assert r.headers["Content-Type"] == "text/event-stream"
            assert next(r.iter_lines()) == b"retry: 2000"
    for headers in ({}, {"Authorization": f"Bearer {TOKENS['care']}"}):
        answer = requests.get(url, headers=headers, timeout=10)
        assert answer.status_code in (401, 403)
        assert "error" in answer.json()


def test_an_offset_past_redis_integers_is_a_named_422(live: Live) -> None:
    """Found by schemathesis: /api/v1/cases?offset=1255151439887031303606894592 answered
    500 (the number reached ZRANGE)."""
    for path in ("/api/v1/cases", "/api/v1/surveys"):
        response = requests.get(
            f"{live.url}{path}?offset={10**27}",
            headers={"Authorization": f"Bearer {TOKENS['supervisor']}"},
            timeout=5,
        )
        assert response.status_code == 422, (path, response.text)
        assert set(response.json()["fields"]) == {"offset"}


def test_a_dnc_import_with_a_bare_carriage_return_is_read_not_a_500(live: Live) -> None:
    """Found by schemathesis: a CSV body with a lone CR inside a line answered 500
    (csv.Error: new-line character seen in unquoted field)."""
    headers = {"Authorization": f"Bearer {TOKENS['care']}", "Content-Type": "text/csv"}
    url = f"{live.url}/api/v1/dnc/import"
    body = " \r=\u00d9]\u009a".encode()
    response = requests.post(url, data=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["invalid"] == [
        {"line": 2, "error": response.json()["invalid"][0]["error"]}
    ]
    response = requests.post(url, data=b"phone\r\n\r\n", headers=headers, timeout=10)
    assert response.status_code == 422 and set(response.json()["fields"]) == {"body"}
