"""Supervisor sign-in: sessions in Redis, CSRF protection, sign-in rate limits, roles.

- `POST /login` (form or JSON {user, password}) checks the scrypt hash from users.yaml
  (off the event loop) and sets a session cookie: HttpOnly, SameSite=Strict, Path=/,
  Secure (and the `__Host-` name prefix) when PUBLIC_URL is https. The session lives in
  Redis (`Keys.sup_session`, keyed by the SHA-256 of the cookie) with the configured TTL,
  so every process behind the load balancer knows it and a sign-out ends it everywhere.
- Each session has a CSRF token (random, stored with it; the page reads it from
  `GET /api/v1/session`). A request authenticated by the cookie that changes state
  (POST, PATCH, PUT, DELETE) must carry it in `X-CSRF-Token` and an `Origin` (or, lacking
  that, `Referer`) of this service; otherwise 403. Bearer tokens (config.apiauth) are not
  ambient credentials and need neither.
- Sign-in attempts are counted in Redis per client address (all attempts) and per user
  name (failures) in a fixed window; past the limit the answer is 429 with Retry-After.
- Roles: supervisor may do everything; viewer reads only (and sees masked numbers).

`authenticate(request, *roles)` is the one check the supervisor API and the callbacks
API's dashboard path use: bearer token or session, role, and CSRF for writes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from config.apiauth import Principal, authorize
from config.runtime import KEYS, REDIS, SETTINGS
from config.users import SupervisorsConfig, burn_password_check, verify_password

log = logging.getLogger("hotline.queueing")

SUPERVISORS: web.AppKey[SupervisorsConfig] = web.AppKey("supervisors_config")
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_FIELD = 256


@dataclass(frozen=True)
class Session:
    user: str
    role: str
    csrf: str
    created_ms: int
    expires_in_s: int


def cookie_name(request: web.Request) -> str:
    return "__Host-hl_session" if _secure(request) else "hl_session"


def _secure(request: web.Request) -> bool:
    return urlsplit(request.app[SETTINGS].public_url).scheme == "https"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _json_exc(cls: type[web.HTTPException], message: str, **headers: str) -> web.HTTPException:
    return cls(
        text=json.dumps({"error": message}), content_type="application/json", headers=headers
    )


async def read_session(request: web.Request) -> Session | None:
    raw_cookie = request.cookies.get(cookie_name(request))
    if not raw_cookie or len(raw_cookie) > MAX_FIELD:
        return None
    redis, keys = request.app[REDIS], request.app[KEYS]
    key = keys.sup_session(_digest(raw_cookie))
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(key)
        pipe.ttl(key)
        raw, ttl = await pipe.execute()
    if raw is None:
        return None
    data = json.loads(raw)
    return Session(
        user=str(data["user"]),
        role=str(data["role"]),
        csrf=str(data["csrf"]),
        created_ms=int(data["created_ms"]),
        expires_in_s=max(0, int(ttl)),
    )


def _allowed_origins(request: web.Request) -> set[str]:
    public = urlsplit(request.app[SETTINGS].public_url)
    origins = {f"{public.scheme}://{public.netloc}"}
    host = request.headers.get("Host")
    if host:
        origins.add(f"{request.scheme}://{host}")
    return origins


def same_origin(request: web.Request) -> bool:
    """Origin (or Referer) names this service: the public URL or the Host it was sent to."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        referer = request.headers.get("Referer")
        if not referer:
            return False
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    return origin.rstrip("/") in _allowed_origins(request)


def check_csrf(request: web.Request, session: Session) -> None:
    if not same_origin(request):
        raise _json_exc(web.HTTPForbidden, "cross-site request refused (Origin)")
    token = request.headers.get(CSRF_HEADER, "")
    if not token or not hmac.compare_digest(token.encode(), session.csrf.encode()):
        raise _json_exc(web.HTTPForbidden, "missing or wrong CSRF token")


async def authenticate(request: web.Request, *roles: str) -> Principal:
    """The caller, by bearer token or session cookie, if its role is one of `roles`
    (supervisor always passes); writes by cookie also need the CSRF token and Origin."""
    if request.headers.get("Authorization"):
        return authorize(request, *roles)
    session = await read_session(request)
    if session is None:
        raise _json_exc(
            web.HTTPUnauthorized, "sign in or give a bearer token", **{"WWW-Authenticate": "Bearer"}
        )
    if roles and session.role not in roles and session.role != "supervisor":
        raise _json_exc(web.HTTPForbidden, f"role '{session.role}' may not do this")
    if request.method in UNSAFE_METHODS:
        check_csrf(request, session)
    return Principal(token_id=f"user:{session.user}", role=session.role)


def _client(request: web.Request) -> str:
    # The peer address; behind a proxy, the proxy's (a shared limit is still a limit).
    return request.remote or "unknown"


# INCR (or GET) plus an expiry set only where none is: EXPIRE NX needs Redis 7 and the
# embedded server is 6.2. Setting it on every attempt that finds none also heals a counter
# whose expiry was lost. Returns {count, ttl}.
_COUNT_LUA = """
local n
if ARGV[2] == '1' then n = redis.call('INCR', KEYS[1])
else n = tonumber(redis.call('GET', KEYS[1]) or '0') end
local ttl = redis.call('TTL', KEYS[1])
if ttl == -1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
"""


async def _count(request: web.Request, key: str, *, increment: bool) -> tuple[int, int]:
    window = request.app[SUPERVISORS].signin.window_s
    # One key per call: the client and user counters may sit on different cluster slots.
    n, ttl = await request.app[REDIS].eval(_COUNT_LUA, 1, key, window, "1" if increment else "0")
    return int(n), int(ttl)


async def _over_limit(request: web.Request, user: str) -> int | None:
    """Count this attempt; seconds to wait if the client or the user is over the limit."""
    cfg = request.app[SUPERVISORS].signin
    keys = request.app[KEYS]
    attempts, client_ttl = await _count(
        request, keys.sup_signin_client(_client(request)), increment=True
    )
    failures, user_ttl = await _count(request, keys.sup_signin_user(user), increment=False)
    if attempts > cfg.per_client:
        return max(1, client_ttl)
    if failures >= cfg.per_user:
        return max(1, user_ttl)
    return None


async def _count_failure(request: web.Request, user: str) -> None:
    await _count(request, request.app[KEYS].sup_signin_user(user), increment=True)


def _invalid(status: int, message: str, fields: dict[str, str]) -> web.HTTPException:
    cls = web.HTTPBadRequest if status == 400 else web.HTTPUnprocessableEntity
    return cls(
        text=json.dumps({"error": message, "fields": fields}), content_type="application/json"
    )


async def _credentials(request: web.Request) -> tuple[str, str]:
    """User name and password. A JSON body is checked field by field (400/422 naming the
    field); the sign-in form's fields, whatever they hold, end in the form's own answer
    (a redirect back to the page)."""
    if request.content_type != "application/json":
        form = dict(await request.post())
        user, password = form.get("user", form.get("username", "")), form.get("password", "")
        return (
            user.strip().lower()[:MAX_FIELD] if isinstance(user, str) else "",
            password[:MAX_FIELD] if isinstance(password, str) else "",
        )
    try:
        body: Any = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _invalid(400, "body must be JSON", {"body": "not JSON (UTF-8)"}) from None
    if not isinstance(body, dict):
        raise _invalid(400, "body must be a JSON object", {"body": "not an object"})
    name = "user" if "user" in body or "username" not in body else "username"
    values = {"user": body.get(name), "password": body.get("password")}
    errors = {
        (name if key == "user" else key): f"a string of 1..{MAX_FIELD} characters"
        for key, value in values.items()
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_FIELD
    }
    if errors:
        raise _invalid(422, "validation failed", errors)
    user, password = str(values["user"]), str(values["password"])
    return user.strip().lower(), password


def _wants_json(request: web.Request) -> bool:
    return request.content_type == "application/json" or "application/json" in request.headers.get(
        "Accept", ""
    )


async def login(request: web.Request) -> web.StreamResponse:
    """POST /login: form (redirects to /dashboard) or JSON (answers the session)."""
    if request.headers.get("Origin") is not None and not same_origin(request):
        raise _json_exc(web.HTTPForbidden, "cross-site sign-in refused (Origin)")
    user, password = await _credentials(request)
    wait_s = await _over_limit(request, user)
    if wait_s is not None:
        log.warning("sign-in rate limited", extra={"user": user, "client": _client(request)})
        if not _wants_json(request):
            raise web.HTTPFound("/login?limited=1", headers={"Retry-After": str(wait_s)})
        raise _json_exc(
            web.HTTPTooManyRequests,
            "too many sign-in attempts; try later",
            **{"Retry-After": str(wait_s)},
        )
    account = request.app[SUPERVISORS].users.get(user)
    if account is None:
        await asyncio.to_thread(burn_password_check, password)
        ok = False
    else:
        ok = await asyncio.to_thread(verify_password, password, account.password_hash)
    if not ok or account is None:
        await _count_failure(request, user)
        log.info("sign-in refused", extra={"user": user, "client": _client(request)})
        if _wants_json(request):
            raise _json_exc(web.HTTPUnauthorized, "wrong user name or password")
        raise web.HTTPFound("/login?failed=1")
    ttl = request.app[SUPERVISORS].session_ttl_s
    cookie = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    created = int(time.time() * 1000)
    record = {"user": user, "role": account.role, "csrf": csrf, "created_ms": created}
    await request.app[REDIS].set(
        request.app[KEYS].sup_session(_digest(cookie)), json.dumps(record), ex=ttl
    )
    log.info("signed in", extra={"user": user, "role": account.role})
    response: web.StreamResponse
    if _wants_json(request):
        response = web.json_response(
            {"user": user, "role": account.role, "csrf_token": csrf, "expires_in_s": ttl}
        )
    else:
        response = web.HTTPFound("/dashboard")
    response.set_cookie(
        cookie_name(request),
        cookie,
        max_age=ttl,
        path="/",
        httponly=True,
        secure=_secure(request),
        samesite="Strict",
    )
    if isinstance(response, web.HTTPException):
        raise response
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    """POST /logout: ends the session (CSRF-checked) and clears the cookie."""
    session = await read_session(request)
    if session is not None:
        check_csrf(request, session)
        raw = request.cookies.get(cookie_name(request), "")
        await request.app[REDIS].delete(request.app[KEYS].sup_session(_digest(raw)))
        log.info("signed out", extra={"user": session.user})
    response = (
        web.json_response({"signed_out": True}) if _wants_json(request) else web.HTTPFound("/login")
    )
    response.del_cookie(cookie_name(request), path="/")
    if isinstance(response, web.HTTPException):
        raise response
    return response


async def session_info(request: web.Request) -> web.Response:
    """GET /api/v1/session: who is signed in, the role and the CSRF token for writes."""
    session = await read_session(request)
    if session is None:
        raise _json_exc(web.HTTPUnauthorized, "not signed in")
    return web.json_response(
        {
            "user": session.user,
            "role": session.role,
            "csrf_token": session.csrf,
            "expires_in_s": session.expires_in_s,
        }
    )
