"""Typed application keys of the callbacks package (filled by `callbacks.wiring`)."""

from __future__ import annotations

from aiohttp import web

from callbacks.scheduler import Scheduler
from callbacks.service import CallbackService

CALLBACKS = web.AppKey("callbacks.service", CallbackService)
SCHEDULER = web.AppKey("callbacks.scheduler", Scheduler)
