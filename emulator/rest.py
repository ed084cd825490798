"""Twilio's REST API paths for calls and recordings, served by the emulator.

Pointing the twilio 9.x Python client at the emulator: the Api domain's base URL is a
plain attribute, so

    client = Client(account_sid, auth_token)
    client.api.base_url = "http://127.0.0.1:8099"   # no trailing path
    client.calls.create(to=..., from_=..., url=...)  # -> POST {base}/2010-04-01/...

works for both the sync client and `Client(..., http_client=AsyncTwilioHttpClient())`
with the `*_async` methods (`client.api` builds the domain once; set `base_url` before or
after first use, it is read on every request). The emulator checks HTTP basic auth
(AccountSid:AuthToken) and answers errors with Twilio's JSON body
`{"code", "message", "more_info", "status"}`.
"""

from __future__ import annotations

import base64
import hmac
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from emulator.calls import API_VERSION, Call
from emulator.errors import RestError
from emulator.flow import Fetch, Inline
from emulator.state import TERMINAL, CallStatus

if TYPE_CHECKING:
    from emulator.emulator import CarrierEmulator

EMULATOR_KEY: web.AppKey[CarrierEmulator] = web.AppKey("emulator")

PREFIX = f"/{API_VERSION}/Accounts/{{account_sid}}"


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=status)


def _error(err: RestError) -> web.Response:
    return _json(err.status, err.to_json())


def _emulator(request: web.Request) -> CarrierEmulator:
    return request.app[EMULATOR_KEY]


def _basic_auth(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return "", ""
    login, _, password = decoded.partition(":")
    return login, password


def _check_auth(request: web.Request) -> None:
    emu = _emulator(request)
    login, password = _basic_auth(request.headers.get("Authorization", ""))
    if not (
        hmac.compare_digest(login, emu.account_sid)
        and hmac.compare_digest(password, emu.auth_token)
    ):
        raise RestError(401, 20003, "Authenticate")
    if request.match_info.get("account_sid") != emu.account_sid:
        raise RestError(404, 20404, f"The requested resource {request.path} was not found")


def _iso(value: str | None) -> datetime | None:
    """A StartTime filter: a date (YYYY-MM-DD) or an ISO 8601 date-time, as UTC."""
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _call(request: web.Request) -> Call:
    sid = request.match_info["call_sid"].removesuffix(".json")
    call = _emulator(request).calls.get(sid)
    if call is None:
        raise RestError(404, 20404, f"The requested resource {request.path} was not found")
    return call


@web.middleware
async def _errors(
    request: web.Request, handler: Any
) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except RestError as err:
        return _error(err)


async def create_call(request: web.Request) -> web.Response:
    _check_auth(request)
    emu = _emulator(request)
    form = await request.post()
    to = str(form.get("To", "")).strip()
    from_ = str(form.get("From", "")).strip()
    url = str(form.get("Url", "")).strip() or None
    twiml = str(form.get("Twiml", "")).strip() or None
    if not to:
        raise RestError(400, 21201, "No 'To' number is specified")
    if not from_:
        raise RestError(400, 21213, "No 'From' number is specified")
    if url is None and twiml is None:
        raise RestError(400, 21205, "Url parameter is required")
    if url is not None and not url.startswith(("http://", "https://")):
        raise RestError(400, 21205, f"Url is not a valid URL: {url}")
    try:
        timeout = float(str(form.get("Timeout", "60")))
    except ValueError:
        raise RestError(400, 21208, "Invalid Timeout") from None
    if timeout <= 0:
        raise RestError(400, 21208, "Invalid Timeout")
    events: list[str] = []
    for raw in form.getall("StatusCallbackEvent", []):
        events.extend(str(raw).replace(",", " ").split())
    call = await emu.create_call(
        to=to,
        from_=from_,
        url=url,
        twiml=twiml,
        method=str(form.get("Method", "POST")),
        fallback_url=str(form.get("FallbackUrl", "")) or None,
        fallback_method=str(form.get("FallbackMethod", "POST")),
        status_callback=str(form.get("StatusCallback", "")) or None,
        status_callback_method=str(form.get("StatusCallbackMethod", "POST")),
        status_callback_events=tuple(events) or ("completed",),
        machine_detection=str(form.get("MachineDetection", "")) or None,
        timeout=timeout,
    )
    return _json(201, call.resource())


async def list_calls(request: web.Request) -> web.Response:
    _check_auth(request)
    emu = _emulator(request)
    q = request.query
    try:
        after = _iso(q.get("StartTime>"))
        before = _iso(q.get("StartTime<"))
        page_size = int(q.get("PageSize", "1000"))
    except ValueError:
        raise RestError(400, 20001, "Invalid filter") from None
    calls = [
        c.resource()
        for c in sorted(emu.calls.values(), key=lambda c: c.created, reverse=True)
        if (not q.get("Status") or c.status.value == q["Status"])
        and (not q.get("To") or c.setup.to == q["To"])
        and (not q.get("From") or c.setup.from_ == q["From"])
        and (after is None or (c.start_time or c.created) >= after)
        and (before is None or (c.start_time or c.created) <= before)
    ][: max(1, page_size)]
    uri = request.path
    return _json(
        200,
        {
            "calls": calls,
            "end": max(0, len(calls) - 1),
            "first_page_uri": f"{uri}?PageSize=1000&Page=0",
            "next_page_uri": None,
            "page": 0,
            "page_size": max(1000, len(calls)),
            "previous_page_uri": None,
            "start": 0,
            "uri": uri,
        },
    )


async def fetch_call(request: web.Request) -> web.Response:
    _check_auth(request)
    return _json(200, _call(request).resource())


async def update_call(request: web.Request) -> web.Response:
    _check_auth(request)
    call = _call(request)
    form = await request.post()
    status = str(form.get("Status", "")).strip()
    url = str(form.get("Url", "")).strip() or None
    twiml = str(form.get("Twiml", "")).strip() or None
    method = str(form.get("Method", "POST")).upper()
    if call.status in TERMINAL or call.finished:
        raise RestError(400, 21220, "Call is not in-progress. Cannot redirect.")
    if status and status not in {"completed", "canceled"}:
        raise RestError(400, 21218, f"Invalid Status: {status}")
    if status == "completed":
        reason = "rest-completed" if call.status == CallStatus.IN_PROGRESS else "rest-canceled"
        call.hangup(reason, cancel=call.status != CallStatus.IN_PROGRESS)
    elif status == "canceled":
        if call.status in (CallStatus.QUEUED, CallStatus.RINGING):
            call.hangup("rest-canceled", cancel=True)
    elif url is not None or twiml is not None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise RestError(400, 21205, f"Url is not a valid URL: {url}")
        if call.status == CallStatus.IN_PROGRESS:
            call.redirect(Inline(twiml, call.document_url) if twiml else Fetch(url or "", method))
        else:
            call.setup.twiml = twiml
            call.setup.url = url or call.setup.url
            call.setup.method = method
    call.updated = call.emu.clock.now()
    return _json(200, call.resource())


async def fetch_recording(request: web.Request) -> web.Response:
    emu = _emulator(request)
    if request.match_info.get("account_sid") != emu.account_sid:
        raise RestError(404, 20404, "not found")
    sid = request.match_info["recording_sid"]
    for suffix in (".wav", ".json"):
        sid = sid.removesuffix(suffix)
    body = emu.recordings.get(sid)
    if body is None:
        raise RestError(404, 20404, f"The requested resource {request.path} was not found")
    return web.Response(body=body, content_type="audio/x-wav")


def create_rest_app(emu: CarrierEmulator) -> web.Application:
    app = web.Application(middlewares=[_errors])
    app[EMULATOR_KEY] = emu
    app.router.add_post(f"{PREFIX}/Calls.json", create_call)
    app.router.add_get(f"{PREFIX}/Calls.json", list_calls)
    app.router.add_get(f"{PREFIX}/Calls/{{call_sid}}", fetch_call)
    app.router.add_post(f"{PREFIX}/Calls/{{call_sid}}", update_call)
    app.router.add_get(f"{PREFIX}/Recordings/{{recording_sid}}", fetch_recording)
    app.router.add_post("/_emulator/calls", control_place_call)
    app.router.add_get("/_emulator/calls/{call_sid}", control_transcript)
    app.router.add_get("/_emulator/errors", control_errors)
    return app


# ---------------------------------------------------------------- control API


async def control_place_call(request: web.Request) -> web.Response:
    """POST /_emulator/calls: place an inbound call from a JSON description."""
    from emulator.parties import CallerScript, Speak

    emu = _emulator(request)
    body = await request.json()
    script = CallerScript(
        presses=tuple(p or None for p in body.get("presses", [])),
        stream_inputs=tuple(Speak(Path(p)) for p in body.get("say", [])),
        hangup_after=body.get("hangup_after"),
        patience=body.get("patience"),
    )
    call = await emu.place_inbound_call(
        voice_url=body["voice_url"],
        from_=body.get("from", "+15005550006"),
        to=body.get("to", "+15005550001"),
        script=script,
        fallback_url=body.get("fallback_url"),
        status_callback=body.get("status_callback"),
    )
    return _json(201, {"sid": call.sid})


async def control_transcript(request: web.Request) -> web.Response:
    emu = _emulator(request)
    call = emu.calls.get(request.match_info["call_sid"])
    if call is None:
        raise RestError(404, 20404, "no such call")
    return _json(200, {"finished": call.finished, **call.transcript.to_json()})


async def control_errors(request: web.Request) -> web.Response:
    return _json(200, {"errors": [e.to_json() for e in _emulator(request).errors]})
