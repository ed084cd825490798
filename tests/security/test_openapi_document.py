"""The OpenAPI document covers every JSON API route the app registers, and nothing else:
a new route under /api/ (or the sign-in and metrics routes) without documentation fails
here. (Moved here from tests/callbacks/test_api.py, which checked the care API's routes
only, when the document became the whole service's.)"""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

from config.loader import load_config
from hotline.app import create_app
from hotline.openapi import document_text
from ivr.accounts import FileAccountBackend
from tests.ivr.conftest import make_settings

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
# JSON (and Prometheus) APIs outside /api/: the sign-in endpoints and the scrape target
OTHER_API_ROUTES = {("POST", "/login"), ("POST", "/logout"), ("GET", "/metrics")}
METHODS = ("get", "put", "post", "delete", "patch")
# Last-Event-ID is the browser's to send back; one that is no event id is ignored, by design
LENIENT = {"GET /api/v1/stats/stream"}


def app_routes(app: web.Application) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue  # aiohttp adds one to every GET
        info = route.resource.get_info() if route.resource is not None else {}
        path = str(info.get("path") or info.get("formatter") or "")
        if path.startswith("/api/") or (route.method, path) in OTHER_API_ROUTES:
            out.add((route.method, path))
    return out


def documented(doc: dict[str, object]) -> set[tuple[str, str]]:
    paths = doc["paths"]
    assert isinstance(paths, dict)
    return {(m.upper(), path) for path, item in paths.items() for m in item if m in METHODS}


def test_every_api_route_of_the_app_is_in_the_document_and_nothing_else() -> None:
    settings = make_settings("redis://127.0.0.1:1/0", "doc:", api_tokens={"t": "supervisor"})
    config = load_config(CONFIG_DIR)
    app = create_app(settings, config, FileAccountBackend.load(CONFIG_DIR / "accounts.yaml"))
    doc = json.loads(document_text())
    routes = app_routes(app)
    assert len(routes) >= 28
    assert routes - documented(doc) == set(), "routes missing from hotline/openapi.json"
    assert documented(doc) - routes == set(), "documented operations the app does not have"


def test_every_operation_says_who_may_call_it_and_how_it_fails() -> None:
    doc = json.loads(document_text())
    schemes = set(doc["components"]["securitySchemes"])
    roles = {"supervisor", "viewer", "care", "agent"}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            where = f"{method.upper()} {path}"
            security = op.get("security", doc["security"])
            assert {name for req in security for name in req} <= schemes, where
            assert set(op.get("x-roles", [])) <= roles, where
            codes = set(op["responses"])
            if security and {} not in security:
                assert "401" in codes, where
            if where not in LENIENT and (
                op.get("requestBody")
                or any(p.get("in") == "query" for p in op.get("parameters", []))
            ):
                assert codes & {"400", "422"}, f"{where}: input errors undocumented"
