"""What every Twilio webhook shares: the signature check, and TwiML that serves on failure.

Every Twilio request is signature-checked first (403 and a log line otherwise). Past
that point Twilio never gets an error: whatever fails, the caller gets valid TwiML that
apologises and connects them to a person, and the failure is logged with the CallSid.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import unquote

from aiohttp import web
from redis.exceptions import RedisError

from ivr.appkeys import FLOW_DEPS
from ivr.flowdeps import FlowDeps
from ivr.twilio_params import BadRequestParams
from ivr.twiml import fallback_response

log = logging.getLogger("hotline.ivr")

TWIML = "application/xml"
FORM = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 200  # Twilio sends a few dozen; more is refused as unreadable

Handler = Callable[[web.Request, Mapping[str, str]], Awaitable[web.Response]]


def twiml(body: str) -> web.Response:
    return web.Response(
        body=body.encode("utf-8"), headers={"Content-Type": "application/xml; charset=utf-8"}
    )


async def form_params(request: web.Request) -> dict[str, str]:
    """The webhook's form fields (the last value of a repeated field, as before).

    Twilio posts urlencoded forms: the body is read and parsed once here, without
    aiohttp's MultiDict; anything else goes through `request.post()`. The body size
    limit is aiohttp's either way (`client_max_size`: 413)."""
    if request.content_type != FORM:
        form = await request.post()
        return {k: v for k, v in form.items() if isinstance(v, str)}
    data = await request.read()
    if not data:
        return {}
    return parse_form(data.rstrip().decode(request.charset or "utf-8"))


def parse_form(text: str) -> dict[str, str]:
    """`dict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS))`,
    without its per-field calls: `+` and percent-escapes are decoded only in the fields
    that have them (same decoding: UTF-8, errors replaced; last value wins).
    tests/ivr/test_form_parse.py compares the two on random forms."""
    if not text:
        return {}
    if text.count("&") >= MAX_FORM_FIELDS:
        raise ValueError("Max number of fields exceeded")
    plus = "+" in text
    out: dict[str, str] = {}
    for field in text.split("&"):
        if not field:
            continue
        name, _, value = field.partition("=")
        if plus:
            name = name.replace("+", " ")
            value = value.replace("+", " ")
        if "%" in name:
            name = unquote(name)
        if "%" in value:
            # a phone number ("%2B8613812345678") is the usual escape: no unquote call
            tail = value[3:]
            value = "+" + tail if value.startswith("%2B") and "%" not in tail else unquote(value)
        out[name] = value
    return out


def fallback(deps: FlowDeps, lang: str | None = None) -> web.Response:
    return twiml(
        fallback_response(
            deps.flow,
            lang,
            emergency_number=deps.emergency_number,
            emergency_queue=deps.emergency_queue,
        )
    )


def twilio_webhook(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Check the signature, parse the form, and turn any failure into TwiML that serves."""

    async def wrapped(request: web.Request) -> web.Response:
        deps = request.app[FLOW_DEPS]
        try:
            params = await form_params(request)
        except web.HTTPRequestEntityTooLarge:
            log.warning("oversized webhook body refused", extra={"path": request.path})
            raise
        except (ValueError, LookupError, web.HTTPException):
            log.warning("unreadable webhook body", extra={"path": request.path})
            raise web.HTTPBadRequest(text="unreadable body") from None
        signature = request.headers.get("X-Twilio-Signature")
        if not deps.signatures.is_valid(request.path_qs, params, signature):
            log.warning(
                "webhook signature rejected",
                extra={
                    "path": request.path,
                    "remote": request.remote,
                    "signature_present": bool(signature),
                },
            )
            raise web.HTTPForbidden(text="invalid signature")
        call_sid = params.get("CallSid", "")
        try:
            return await handler(request, params)
        except BadRequestParams as exc:
            log.warning("bad webhook parameters: %s", exc, extra={"call_sid": call_sid})
            return fallback(deps)
        except (TimeoutError, RedisError, OSError) as exc:
            log.error(
                "redis unavailable, caller sent to the emergency path: %s",
                type(exc).__name__,
                extra={"call_sid": call_sid, "path": request.path},
            )
            return fallback(deps)
        except Exception:
            log.exception(
                "webhook failed, caller sent to the emergency path",
                extra={"call_sid": call_sid, "path": request.path},
            )
            return fallback(deps)

    return wrapped
