"""create_app(settings, config): routes and wiring only; resources open in cleanup_ctx."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

from aiohttp import web

from callbacks import api as callbacks_api
from callbacks.wiring import callbacks_context
from config.keys import Keys
from config.loader import HotlineConfig
from config.redis_conn import open_redis
from config.runtime import KEYS, REDIS, SETTINGS
from config.settings import Settings
from ivr import webhooks
from ivr.accounts import AccountBackend
from ivr.appkeys import ACCOUNTS, FLOW_DEPS, SESSIONS
from ivr.flowdeps import FlowDeps
from ivr.sessions import SessionStore
from ivr.signature import SignatureChecker
from ivr.twiml import Renderer

log = logging.getLogger("hotline.app")

MAX_BODY_BYTES = 64 * 1024  # Twilio's webhooks are a few KB; anything larger is refused (413)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def build_flow_deps(settings: Settings, config: HotlineConfig) -> FlowDeps:
    def queue_open(queue: str, when: datetime) -> bool:
        return config.queues.is_open(queue, when, config.calendars)

    return FlowDeps(
        flow=config.flow,
        renderer=Renderer(flow=config.flow, base_url=settings.base_url),
        signatures=SignatureChecker(settings.auth_token, settings.base_url),
        queue_open=queue_open,
        emergency_number=settings.emergency_number,
        emergency_queue=settings.emergency_queue,
    )


def create_app(
    settings: Settings,
    config: HotlineConfig,
    accounts: AccountBackend,
    *,
    run_workers: bool = True,
) -> web.Application:
    """The service. `run_workers=False` leaves background loops to tests (`run_once`)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[security_headers])
    app[SETTINGS] = settings
    app[KEYS] = Keys(prefix=settings.key_prefix)
    app[FLOW_DEPS] = build_flow_deps(settings, config)
    app[ACCOUNTS] = accounts
    app.cleanup_ctx.append(_redis_ctx)
    app.cleanup_ctx.append(
        callbacks_context(
            known_queues=frozenset(config.queues.queues),
            calling=config.calling,
            surveys=config.surveys,
            run_scheduler=run_workers,
        )
    )
    app.add_routes(webhooks.routes())
    callbacks_api.add_routes(app)
    return app


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    client, close = await open_redis(settings.redis_url, settings.data_dir)
    app[REDIS] = client
    app[SESSIONS] = SessionStore(client, app[KEYS], settings.session_ttl_s)
    try:
        yield
    finally:
        await close()
