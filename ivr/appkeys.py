"""Application keys for the IVR's own services (filled by the composition root)."""

from __future__ import annotations

from aiohttp import web

from ivr.accounts import AccountBackend
from ivr.flowdeps import FlowDeps
from ivr.sessions import SessionStore

FLOW_DEPS = web.AppKey("flow_deps", FlowDeps)
SESSIONS = web.AppKey("sessions", SessionStore)
ACCOUNTS = web.AppKey("accounts", AccountBackend)
