"""Agent dispositions: an agent (or the care team) marks a call as a complaint.

  POST /api/v1/cases   {call_sid, kind?: complaint|not_solved|poor_score, note?, phone?}

The call's customer number, queue, agent and language come from the queue store (the call
joined a queue, so its join info holds them); `phone` is only needed for a call the queues
never saw. The case opens once per call (a second disposition, or the complaint the menu
choice already opened, returns the same case) with its follow-up due within 24 h.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from aiohttp import web

from callbacks.appkeys import CALLBACKS
from callbacks.cases import CaseKind
from callbacks.phone import InvalidPhone, is_e164, parse_e164
from config.apiauth import authorize, json_error
from ivr.appkeys import ROUTER

log = logging.getLogger("hotline.callbacks.api")

ROLES = ("care", "agent")
MAX_NOTE = 2000
_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(body, ensure_ascii=False), content_type="application/json"
    )


async def open_case(request: web.Request) -> web.Response:
    principal = authorize(request, *ROLES)
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return json_error(400, "body must be JSON", fields={"body": "not JSON (UTF-8)"})
    if not isinstance(body, dict):
        return json_error(400, "body must be a JSON object", fields={"body": "not an object"})
    errors: dict[str, str] = {}
    call_sid = body.get("call_sid")
    if not isinstance(call_sid, str) or not _SID.match(call_sid):
        errors["call_sid"] = "required: the CallSid of the customer's call"
    kind_raw = body.get("kind", CaseKind.COMPLAINT.value)
    kind = next((k for k in CaseKind if k.value == kind_raw), None)
    if kind is None:
        errors["kind"] = f"one of {', '.join(k.value for k in CaseKind)}"
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
        errors["note"] = f"a string of at most {MAX_NOTE} characters"
    phone: str | None = None
    if body.get("phone") is not None:
        try:
            phone = parse_e164(body["phone"])
        except InvalidPhone as exc:
            errors["phone"] = str(exc)
    if errors:
        return json_error(422, "validation failed", fields=errors)
    assert isinstance(call_sid, str) and kind is not None
    status = await request.app[ROUTER].store.call_status(call_sid)
    info = status.info if status else {}
    caller = str(info.get("caller") or "")
    phone = phone or (caller if is_e164(caller) else None)
    if phone is None:
        if status is None:
            return json_error(404, "the queues know no such call; give its phone")
        return json_error(422, "validation failed", fields={"phone": "the call has no number"})
    lang = info.get("lang")
    case, job = await request.app[CALLBACKS].open_case(
        kind=kind,
        phone=phone,
        call_sid=call_sid,
        queue=status.queue if status else None,
        agent=status.agent_id if status else None,
        language=lang if isinstance(lang, str) else None,
        note=note or f"agent disposition: {kind.value}",
    )
    log.info(
        "case opened by disposition",
        extra={"call_sid": call_sid, "case_id": case.id, "by": principal.token_id},
    )
    now = await request.app[CALLBACKS].store.now_ms()
    return _json(
        {"case": case.to_dict(now), "follow_up": job.to_dict() if job else None}, status=201
    )


def case_routes() -> list[web.RouteDef]:
    return [web.post("/api/v1/cases", open_case)]
