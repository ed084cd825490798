"""Application keys for the IVR's own services (filled by the composition root)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from ivr.accounts import AccountBackend
from ivr.flowdeps import FlowDeps
from ivr.sessions import SessionStore
from queueing.router import Router

if TYPE_CHECKING:
    from ivr.voice import VoiceService

FLOW_DEPS = web.AppKey("flow_deps", FlowDeps)
SESSIONS = web.AppKey("sessions", SessionStore)
ACCOUNTS = web.AppKey("accounts", AccountBackend)

# The queue router (queueing.router.Router) the IVR hands transfers to.
ROUTER = web.AppKey("ivr_router", Router)
# What follows an agent call (a survey in the same call): TwiML, or None for goodbye.
AfterCallHook = Callable[..., Awaitable[str | None]]
AFTER_CALL: web.AppKey[AfterCallHook] = web.AppKey("after_call")
# Speech: voice menus over Media Streams and transcription (absent when speech is off).
VOICE: web.AppKey[VoiceService] = web.AppKey("voice")
