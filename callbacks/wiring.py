"""Build the callbacks service and scheduler for an aiohttp app (no I/O at import).

    app.cleanup_ctx.append(callbacks_context(known_queues=..., calling=..., surveys=...))
    add_routes(app)

The context reads SETTINGS, REDIS and KEYS (filled earlier by the composition root),
takes calling.yaml and surveys.yaml as loaded at start-up, starts the
scheduler loop and stops it (letting in-flight dials finish) in its `finally`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from aiohttp import web

from callbacks.appkeys import CALLBACKS, SCHEDULER
from callbacks.cases import CaseStore
from callbacks.scheduler import Dialer, Scheduler
from callbacks.service import CallbackService
from callbacks.store import CallbackStore
from callbacks.surveys_store import SurveyStore
from callbacks.twilio_dialer import TwilioDialer
from config.calling import CallingConfig
from config.runtime import KEYS, REDIS, SETTINGS
from config.settings import Settings
from config.surveys import SurveyConfig

DialerFactory = Callable[[Settings, CallingConfig], Dialer]


def twilio_dialer(settings: Settings, calling: CallingConfig) -> Dialer:
    return TwilioDialer(
        account_sid=settings.account_sid,
        auth_token=settings.auth_token,
        caller_id=calling.caller_id,
        public_url=settings.public_url,
        api_base=settings.twilio_api_base,
        http_timeout_s=min(10.0, calling.limits.lease_s / 3),
    )


def callbacks_context(
    *,
    known_queues: frozenset[str],
    calling: CallingConfig,
    surveys: SurveyConfig,
    dialer_factory: DialerFactory = twilio_dialer,
    run_scheduler: bool = True,
) -> Callable[[web.Application], AbstractAsyncContextManager[None]]:
    """`calling` and `surveys` come validated from the start-up configuration load."""

    @asynccontextmanager
    async def context(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        redis, keys = app[REDIS], app[KEYS]
        store = CallbackStore(redis, keys, calling.limits)
        service = CallbackService(
            store,
            SurveyStore(redis, keys, calling.bank_timezone),
            CaseStore(redis, keys),
            calling,
            surveys,
            known_queues | {calling.care_queue},
        )
        dialer = dialer_factory(settings, calling)
        scheduler = Scheduler(store, dialer, calling, on_settled=service.on_settled)
        app[CALLBACKS] = service
        app[SCHEDULER] = scheduler
        if run_scheduler:
            scheduler.start()
        try:
            yield
        finally:
            await scheduler.stop()
            closer: Any = getattr(dialer, "aclose", None)
            if closer is not None:
                await closer()

    return context
