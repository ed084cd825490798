"""create_app(settings, config): routes and wiring only; resources open in cleanup_ctx."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime

from aiohttp import web

from callbacks import api as callbacks_api
from callbacks.call_wiring import install_call_webhooks
from callbacks.wiring import callbacks_context
from config.keys import Keys
from config.loader import HotlineConfig
from config.redis_conn import open_redis
from config.runtime import KEYS, REDIS, SETTINGS
from config.settings import Settings
from hotline import openapi
from hotline.memory import memory_trim_ctx
from ivr import holdmusic, queue_calls, voice, webhooks
from ivr.accounts import AccountBackend
from ivr.appkeys import ACCOUNTS, FLOW_DEPS, ROUTER, SESSIONS
from ivr.dispatch import TwilioDispatcher
from ivr.flowdeps import FlowDeps
from ivr.prompt_catalog import prompt_items
from ivr.sessions import SessionStore
from ivr.signature import SignatureChecker
from ivr.speech_hooks import SpeechHooks
from ivr.twilio_rest import TwilioRest
from ivr.twiml import Renderer
from ivr.voice import SpeechSetup, close_sockets, voice_context
from queueing import agent_api, supervisor_api
from queueing.appkeys import QUEUE_ROUTER, QUEUE_STATS, QUEUE_STORE
from queueing.router import Router
from queueing.store import QueueStore
from speech.prompts import add_prompt_routes

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


def build_flow_deps(
    settings: Settings, config: HotlineConfig, hooks: SpeechHooks | None = None
) -> FlowDeps:
    """`hooks` (speech on): prompts rendered on disk are <Play>ed and voice menus stream."""

    def queue_open(queue: str, when: datetime) -> bool:
        return config.queues.is_open(queue, when, config.calendars)

    renderer = Renderer(flow=config.flow, base_url=settings.base_url)
    if hooks is not None:
        renderer = Renderer(
            flow=config.flow,
            base_url=settings.base_url,
            prompt_url=hooks.prompt_url,
            voice_ok=hooks.voice_ok,
        )
    return FlowDeps(
        flow=config.flow,
        renderer=renderer,
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
    speech: SpeechSetup | None = None,
) -> web.Application:
    """The service. `run_workers=False` leaves background loops to tests (`run_once`).

    `speech=None`: keypad menus and <Say> prompts only (no model is loaded). With a
    `SpeechSetup` (what `hotline serve` passes): prompts served from /prompts and <Play>ed,
    missing ones rendered in the background, voice menus over /media.
    """
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[security_headers])
    app[SETTINGS] = settings
    app[KEYS] = Keys(prefix=settings.key_prefix)
    hooks = SpeechHooks(config.flow, settings.base_url) if speech is not None else None
    app[FLOW_DEPS] = build_flow_deps(settings, config, hooks)
    app[ACCOUNTS] = accounts
    app.cleanup_ctx.append(memory_trim_ctx)
    app.cleanup_ctx.append(_redis_ctx)
    app.cleanup_ctx.append(_queue_ctx(config, run_workers))
    app.cleanup_ctx.append(
        callbacks_context(
            known_queues=frozenset(config.queues.queues),
            calling=config.calling,
            surveys=config.surveys,
            run_scheduler=run_workers,
        )
    )
    app.cleanup_ctx.append(supervisor_api.supervisors_context(config.queues))
    if speech is not None and hooks is not None:
        items = prompt_items(config.flow, config.surveys)
        app.cleanup_ctx.append(voice_context(speech, hooks, items))
        app.on_shutdown.append(close_sockets)
        add_prompt_routes(app, speech.settings.prompt_dir)
        app.add_routes(voice.routes())
    app.add_routes(webhooks.routes())
    app.add_routes(queue_calls.routes())
    app.add_routes(holdmusic.routes())
    app.add_routes(agent_api.routes())
    callbacks_api.add_routes(app)
    # AFTER_CALL (survey / outbound survey / complaint case), /survey/*, /voice/outbound*
    install_call_webhooks(app)
    supervisor_api.add_routes(app)
    app.add_routes(openapi.routes())
    return app


def _queue_ctx(
    config: HotlineConfig, run_router: bool
) -> Callable[[web.Application], AbstractAsyncContextManager[None]]:
    """The queue store and router, with the Twilio dispatcher that connects paired calls."""

    @asynccontextmanager
    async def context(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        store = QueueStore(app[REDIS], app[KEYS], config.queues)
        rest = TwilioRest(
            settings.account_sid, settings.auth_token, api_base=settings.twilio_api_base
        )
        dispatcher = TwilioDispatcher(
            rest,
            base_url=settings.base_url,
            ring_timeout_s=config.queues.routing.ring_timeout_s,
            default_lang=config.flow.default_language,
            callback_caller_id=config.calling.caller_id,
        )
        router = Router(store, dispatcher)
        app[ROUTER] = app[QUEUE_ROUTER] = router
        app[QUEUE_STORE] = store
        app[QUEUE_STATS] = router.stats
        try:
            if run_router:
                await router.start()
            yield
        finally:
            await router.stop()
            await rest.aclose()

    return context


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    client, close = await open_redis(settings.redis_url, settings.data_dir)
    app[REDIS] = client
    app[SESSIONS] = sessions = SessionStore(client, app[KEYS], settings.session_ttl_s)
    try:
        yield
    finally:
        await sessions.aclose()
        await close()
