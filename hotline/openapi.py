"""GET /api/v1/openapi.json: the OpenAPI document of every JSON API of the service.

It lives here, in the composition root, because it describes the routes of several
packages (care team, agents, supervisors); `tests/security/test_openapi_document.py`
fails when a route of the app is missing from it.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from aiohttp import web

PATH = "/api/v1/openapi.json"


@cache
def document_text() -> str:
    return files("hotline").joinpath("openapi.json").read_text(encoding="utf-8")


async def openapi_handler(request: web.Request) -> web.Response:
    return web.Response(text=document_text(), content_type="application/json")


def routes() -> list[web.RouteDef]:
    return [web.get(PATH, openapi_handler)]
