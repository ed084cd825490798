"""The care team's JSON API (bearer tokens, role 'care'; supervisors may do everything).

Routes (documented in hotline/openapi.json, served at /api/v1/openapi.json):
  POST   /api/v1/callbacks             schedule (201 with the job; 422 with field errors)
  GET    /api/v1/callbacks             list: status, kind, from, to, phone; limit + cursor
  GET    /api/v1/callbacks/{id}        one job with its history and attempts
  PATCH  /api/v1/callbacks/{id}        reschedule / reassign (409 unless waiting)
  DELETE /api/v1/callbacks/{id}        cancel (409 while dialling or in progress)
  POST   /api/v1/callbacks/{id}/outcome  the agent's outcome: reached, no_answer, ...
  POST   /api/v1/dnc                   add numbers; DELETE /api/v1/dnc/{phone} removes one
  POST   /api/v1/dnc/import            CSV (first column: the number)
  GET    /api/v1/surveys               answers (from, to, queue, agent) + CSAT summary
  GET    /api/v1/surveys/stats         CSAT and index per queue/agent for a day or month
  GET    /api/v1/cases                 open care cases and complaints with 24 h deadlines
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from callbacks.appkeys import CALLBACKS
from callbacks.erasure import erase_handler
from callbacks.jobs import JobKind, JobState, dt_to_ms, ms_to_dt
from callbacks.phone import InvalidPhone, parse_e164
from callbacks.service import AgentOutcome, CallbackRequest, CallbackService, NoWindow
from callbacks.store import ChangeStatus, JobFilter, StoreFull
from callbacks.surveys_store import SCOPES, satisfaction
from callbacks.windows import valid_zone
from config.apiauth import authorize, json_error
from config.surveys import LANGUAGES

# The supervisors' wallboard schedules callbacks for abandoned callers with its signed-in
# session: `authenticate` accepts a bearer token exactly as `authorize` does, or a
# supervisor session cookie, and then (for POST) also the session's CSRF token and a
# same-origin Origin header. Used only on the routes the wallboard calls.
from queueing.supervisor_auth import authenticate

ROLE = "care"
MAX_NOTE = 2000
MAX_REASON = 200
MAX_NAME = 64
CSV_MAX_BYTES = 5 * 1024 * 1024
CREATE_KINDS = frozenset(
    {JobKind.CARE_FOLLOW_UP, JobKind.COMPLAINT_FOLLOW_UP, JobKind.QUEUE_CALLBACK}
)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(body, ensure_ascii=False), content_type="application/json"
    )


def _invalid(fields: dict[str, str]) -> web.Response:
    return json_error(422, "validation failed", fields=fields)


MAX_OFFSET = 1_000_000  # beyond any list kept (jobs, surveys, cases are bounded far below)


def _page(query: Mapping[str, str]) -> tuple[int, int, dict[str, str]]:
    """limit and offset of a list request, each checked and named on error (an offset
    past Redis's integer range used to reach ZRANGE and answer 500)."""
    errors: dict[str, str] = {}
    limit_raw, offset_raw = query.get("limit", "100"), query.get("offset", "0")
    limit = int(limit_raw) if limit_raw.isascii() and limit_raw.isdigit() else -1
    offset = int(offset_raw) if offset_raw.isascii() and offset_raw.isdigit() else -1
    if not 1 <= limit <= 500:
        errors["limit"] = "an integer 1..500"
    if not 0 <= offset <= MAX_OFFSET:
        errors["offset"] = f"an integer 0..{MAX_OFFSET}"
    if errors:
        return 100, 0, errors
    return limit, offset, errors


def _parse_time(value: Any) -> datetime | None:
    """An ISO-8601 time with an offset ('Z' allowed); None if malformed or naive."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return json_error(400, "body must be JSON", fields={"body": "not JSON (UTF-8)"})
    if not isinstance(body, dict):
        return json_error(400, "body must be a JSON object", fields={"body": "not an object"})
    return body


class _Fields:
    """Collects per-field errors while reading a JSON object."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.errors: dict[str, str] = {}

    def text(self, name: str, *, max_len: int, required: bool = False) -> str | None:
        value = self.body.get(name)
        if value is None or value == "":
            if required:
                self.errors[name] = "required"
            return None
        if not isinstance(value, str):
            self.errors[name] = "must be a string"
            return None
        if len(value) > max_len:
            self.errors[name] = f"at most {max_len} characters"
            return None
        return value

    def time(self, name: str) -> datetime | None:
        value = self.body.get(name)
        if value is None:
            return None
        parsed = _parse_time(value)
        if parsed is None:
            self.errors[name] = "must be an ISO-8601 time with a UTC offset"
        return parsed

    def phone(self, name: str = "phone") -> str | None:
        value = self.body.get(name)
        if value is None:
            self.errors[name] = "required"
            return None
        try:
            return parse_e164(value)
        except InvalidPhone as exc:
            self.errors[name] = f"invalid E.164 number: {exc}"
            return None


def _service(request: web.Request) -> CallbackService:
    return request.app[CALLBACKS]


# --- callbacks -------------------------------------------------------------------------
async def create_callback(request: web.Request) -> web.Response:
    await authenticate(request, ROLE)  # bearer token, or wallboard session (+ CSRF)
    service = _service(request)
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    f = _Fields(body)
    phone = f.phone()
    reason = f.text("reason", max_len=MAX_REASON)
    note = f.text("note", max_len=MAX_NOTE)
    queue = f.text("queue", max_len=MAX_NAME)
    agent = f.text("agent", max_len=MAX_NAME)
    language = f.text("language", max_len=8)
    zone = f.text("timezone", max_len=64)
    not_before = f.time("not_before")
    not_after = f.time("not_after")
    kind_raw = f.text("kind", max_len=32) or JobKind.CARE_FOLLOW_UP.value
    kind = next((k for k in CREATE_KINDS if k.value == kind_raw), None)
    if kind is None:
        f.errors["kind"] = f"one of {', '.join(sorted(k.value for k in CREATE_KINDS))}"
    if queue is not None and queue not in service.known_queues:
        f.errors["queue"] = f"unknown queue '{queue}'"
    if queue is None and agent is None and "queue" not in f.errors:
        f.errors["queue"] = "give a queue or an agent"
    if language is not None and language not in LANGUAGES:
        f.errors["language"] = f"one of {', '.join(LANGUAGES)}"
    if zone is not None and not valid_zone(zone):
        f.errors["timezone"] = "unknown IANA time zone"
    now = await service.store.now()
    if not_after is not None:
        if not_after <= now:
            f.errors["not_after"] = "the window is in the past"
        elif not_before is not None and not_after <= not_before:
            f.errors["not_after"] = "must be after not_before"
    if phone is not None and "phone" not in f.errors and await service.store.dnc_contains(phone):
        f.errors["phone"] = "on the do-not-call list"
    if f.errors:
        return _invalid(f.errors)
    assert phone is not None and kind is not None
    callback = CallbackRequest(
        phone=phone,
        kind=kind,
        not_before=not_before,
        not_after=not_after,
        queue=queue,
        agent=agent,
        language=language,
        reason=reason,
        note=note,
        timezone=zone,
    )
    try:
        job = await service.schedule(callback)
    except NoWindow as exc:
        return _invalid({"not_after": str(exc)})
    except StoreFull:
        return json_error(503, "the callback schedule is full; try again later")
    return _json(job.to_dict(detail=True), status=201)


def _csv_enum(
    raw: str | None, parse: Callable[[str], Any], name: str, errors: dict[str, str]
) -> frozenset[Any]:
    if not raw:
        return frozenset()
    try:
        return frozenset(parse(part.strip()) for part in raw.split(",") if part.strip())
    except ValueError:
        errors[name] = "unknown value"
        return frozenset()


async def list_callbacks(request: web.Request) -> web.Response:
    await authenticate(request, ROLE)  # bearer token, or wallboard session (+ CSRF)
    service = _service(request)
    q = request.query
    errors: dict[str, str] = {}
    states = _csv_enum(q.get("status"), JobState, "status", errors)
    kinds = _csv_enum(q.get("kind"), JobKind, "kind", errors)
    bounds: dict[str, int | None] = {}
    for name in ("from", "to", "created_from", "created_to"):
        raw = q.get(name)
        parsed = _parse_time(raw) if raw is not None else None
        if raw is not None and parsed is None:
            errors[name] = "must be an ISO-8601 time with a UTC offset"
        bounds[name] = dt_to_ms(parsed) if parsed else None
    phone = None
    if q.get("phone"):
        try:
            phone = parse_e164(q["phone"])
        except InvalidPhone:
            errors["phone"] = "invalid E.164 number"
    try:
        limit = int(q.get("limit", "50"))
        if not 1 <= limit <= 200:
            raise ValueError
    except ValueError:
        errors["limit"] = "an integer 1..200"
        limit = 50
    if errors:
        return _invalid(errors)
    filt = JobFilter(
        states=states,
        kinds=kinds,
        phone=phone,
        due_from_ms=bounds["from"],
        due_to_ms=bounds["to"],
        created_from_ms=bounds["created_from"],
        created_to_ms=bounds["created_to"],
    )
    try:
        jobs, cursor = await service.store.search(filt, limit=limit, cursor=q.get("cursor"))
    except ValueError:
        return _invalid({"cursor": "not a cursor this API returned"})
    return _json({"items": [j.to_dict() for j in jobs], "next_cursor": cursor})


async def get_callback(request: web.Request) -> web.Response:
    await authenticate(request, ROLE)  # bearer token, or wallboard session (+ CSRF)
    job = await _service(request).store.get(request.match_info["id"])
    if job is None:
        return json_error(404, "no such callback")
    return _json(job.to_dict(detail=True))


async def patch_callback(request: web.Request) -> web.Response:
    authorize(request, ROLE)
    service = _service(request)
    job_id = request.match_info["id"]
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    job = await service.store.get(job_id)
    if job is None:
        return json_error(404, "no such callback")
    f = _Fields(body)
    allowed = {"not_before", "not_after", "queue", "agent", "note"}
    for name in body:
        if name not in allowed:
            f.errors[name] = "cannot be changed"
    not_before = f.time("not_before")
    not_after = f.time("not_after")
    changes: dict[str, str] = {}
    for name, max_len in (("queue", MAX_NAME), ("agent", MAX_NAME), ("note", MAX_NOTE)):
        if name in body:
            value = f.text(name, max_len=max_len)
            changes[name] = value or ""
    if changes.get("queue") and changes["queue"] not in service.known_queues:
        f.errors["queue"] = f"unknown queue '{changes['queue']}'"
    now = await service.store.now()
    if not_after is not None and not_after <= now:
        f.errors["not_after"] = "the window is in the past"
    if f.errors:
        return _invalid(f.errors)
    due_ms: int | None = None
    if not_before is not None or not_after is not None:
        request_ = CallbackRequest(
            phone=job.phone,
            not_before=not_before or job.due,  # only not_after changed: keep the due time
            not_after=not_after or (ms_to_dt(job.not_after_ms) if job.not_after_ms else None),
            timezone=job.timezone,
        )
        try:
            due_ms = dt_to_ms(await service.first_dial_time(request_, now))
        except NoWindow as exc:
            return _invalid({"not_after": str(exc)})
        if not_after is not None:
            changes["not_after"] = str(dt_to_ms(not_after))
    result = await service.store.reschedule(job_id, due_ms=due_ms, fields=changes)
    if result.status is ChangeStatus.MISSING:
        return json_error(404, "no such callback")
    if result.status is ChangeStatus.CONFLICT:
        state = result.state.value if result.state else "unknown"
        return json_error(409, f"a {state} callback cannot be changed", state=state)
    updated = await service.store.get(job_id)
    assert updated is not None
    return _json(updated.to_dict(detail=True))


async def cancel_callback(request: web.Request) -> web.Response:
    authorize(request, ROLE)
    service = _service(request)
    job_id = request.match_info["id"]
    result = await service.store.cancel(job_id, reason="cancelled by care team")
    if result.status is ChangeStatus.MISSING:
        return json_error(404, "no such callback")
    if result.status is ChangeStatus.CONFLICT:
        state = result.state.value if result.state else "unknown"
        if result.state in (JobState.DIALLING, JobState.IN_PROGRESS):
            message = (
                f"the callback is {state}: the call may already be ringing, "
                "so it cannot be cancelled"
            )
        else:
            message = f"the callback is already {state}"
        return json_error(409, message, state=state)
    job = await service.store.get(job_id)
    assert job is not None
    return _json(job.to_dict(detail=True))


async def record_outcome(request: web.Request) -> web.Response:
    authorize(request, ROLE, "agent")
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    try:
        outcome = AgentOutcome(body.get("outcome"))
    except ValueError:
        return _invalid({"outcome": f"one of {', '.join(o.value for o in AgentOutcome)}"})
    f = _Fields(body)
    note = f.text("note", max_len=MAX_NOTE)
    if f.errors:
        return _invalid(f.errors)
    job = await _service(request).record_agent_outcome(request.match_info["id"], outcome, note)
    if job is None:
        return json_error(404, "no such callback")
    return _json(job.to_dict(detail=True))


# --- do not call -----------------------------------------------------------------------
async def dnc_add(request: web.Request) -> web.Response:
    authorize(request, ROLE)
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    raw = body.get("phones", [body["phone"]] if "phone" in body else None)
    if not isinstance(raw, list) or not raw or len(raw) > 1000:
        return _invalid({"phones": "give 'phone' or a list 'phones' of 1..1000 numbers"})
    numbers: list[str] = []
    errors: dict[str, str] = {}
    for index, item in enumerate(raw):
        try:
            numbers.append(parse_e164(item))
        except InvalidPhone as exc:
            errors[f"phones[{index}]"] = f"invalid E.164 number: {exc}"
    if errors:
        return _invalid(errors)
    added, refused = await _service(request).store.dnc_add(numbers)
    return _json({"added": added, "refused_at_limit": refused}, status=201 if added else 200)


async def dnc_remove(request: web.Request) -> web.Response:
    authorize(request, ROLE)
    try:
        number = parse_e164(request.match_info["phone"])
    except InvalidPhone:
        return _invalid({"phone": "invalid E.164 number"})
    removed = await _service(request).store.dnc_remove([number])
    if not removed:
        return json_error(404, "the number is not on the list")
    return _json({"removed": removed})


async def dnc_import(request: web.Request) -> web.Response:
    """CSV upload (text/csv body): the first column of each row is a number; a header row
    and blank lines are skipped; bad rows are reported by line, good rows imported."""
    authorize(request, ROLE)
    if request.content_length is not None and request.content_length > CSV_MAX_BYTES:
        return json_error(413, f"at most {CSV_MAX_BYTES} bytes")
    raw = await request.content.read(CSV_MAX_BYTES + 1)
    if len(raw) > CSV_MAX_BYTES:
        return json_error(413, f"at most {CSV_MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _invalid({"body": "must be UTF-8 CSV"})
    numbers: list[str] = []
    invalid: list[dict[str, Any]] = []
    # newline="": a lone CR ends a line (the csv module's own rule) instead of raising
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        for line_no, row in enumerate(rows, start=1):
            if not row or not row[0].strip():
                continue
            cell = row[0].strip()
            if line_no == 1 and not any(ch.isdigit() for ch in cell):
                continue  # header
            try:
                numbers.append(parse_e164(cell))
            except InvalidPhone as exc:
                if len(invalid) < 100:
                    invalid.append({"line": line_no, "error": str(exc)})
    except csv.Error as exc:
        return _invalid({"body": f"not CSV at line {rows.line_num}: {exc}"})
    if not numbers and not invalid:
        return _invalid({"body": "no line with a number: the first column holds the number"})
    added, refused = await _service(request).store.dnc_add(numbers)
    return _json(
        {
            "rows": len(numbers) + len(invalid),
            "added": added,
            "already_listed": len(numbers) - added - refused,
            "refused_at_limit": refused,
            "invalid": invalid,
        }
    )


# --- surveys and cases -----------------------------------------------------------------
async def list_surveys(request: web.Request) -> web.Response:
    authorize(request, ROLE, "viewer")
    service = _service(request)
    q = request.query
    errors: dict[str, str] = {}
    bounds: dict[str, int | None] = {}
    for name in ("from", "to"):
        raw = q.get(name)
        parsed = _parse_time(raw) if raw is not None else None
        if raw is not None and parsed is None:
            errors[name] = "must be an ISO-8601 time with a UTC offset"
        bounds[name] = dt_to_ms(parsed) if parsed else None
    limit, offset, page_errors = _page(q)
    errors.update(page_errors)
    if errors:
        return _invalid(errors)
    answers = await service.surveys.search(
        from_ms=bounds["from"],
        to_ms=bounds["to"],
        queue=q.get("queue") or None,
        agent=q.get("agent") or None,
        limit=limit,
        offset=offset,
    )
    scored = [a.score for a in answers if a.score is not None]
    summary = satisfaction(
        len(scored),
        sum(scored),
        sum(1 for s in scored if s >= 4),
        sum(1 for a in answers if a.solved is True),
        sum(1 for a in answers if a.solved is False),
    )
    return _json({"items": [a.to_dict() for a in answers], "summary": summary.to_dict()})


async def survey_stats(request: web.Request) -> web.Response:
    authorize(request, ROLE, "viewer")
    service = _service(request)
    period = request.query.get("period", "")
    scope = request.query.get("scope", "queue")
    errors: dict[str, str] = {}
    valid_period = False
    for fmt in ("%Y-%m-%d", "%Y-%m"):
        try:
            datetime.strptime(period, fmt)
            valid_period = True
        except ValueError:
            continue
    if not valid_period:
        errors["period"] = "a day YYYY-MM-DD or a month YYYY-MM (the bank's calendar)"
    if scope not in SCOPES:
        errors["scope"] = f"one of {', '.join(SCOPES)}"
    if errors:
        return _invalid(errors)
    stats = await service.surveys.stats(period, scope)
    return _json(
        {"period": period, "scope": scope, "items": {k: v.to_dict() for k, v in stats.items()}}
    )


async def list_cases(request: web.Request) -> web.Response:
    authorize(request, ROLE, "viewer")
    service = _service(request)
    limit, offset, page_errors = _page(request.query)
    if page_errors:
        return _invalid(page_errors)
    cases = await service.cases.list_open(limit=limit, offset=offset)
    now = await service.store.now_ms()
    return _json({"items": [c.to_dict(now) for c in cases]})


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/v1/callbacks", create_callback),
        web.get("/api/v1/callbacks", list_callbacks),
        web.get("/api/v1/callbacks/{id}", get_callback),
        web.patch("/api/v1/callbacks/{id}", patch_callback),
        web.delete("/api/v1/callbacks/{id}", cancel_callback),
        web.post("/api/v1/callbacks/{id}/outcome", record_outcome),
        web.post("/api/v1/dnc", dnc_add),
        web.post("/api/v1/dnc/import", dnc_import),
        web.delete("/api/v1/dnc/{phone}", dnc_remove),
        web.delete("/api/v1/customers/{phone}", erase_handler),
        web.get("/api/v1/surveys", list_surveys),
        web.get("/api/v1/surveys/stats", survey_stats),
        web.get("/api/v1/cases", list_cases),
    ]


def add_routes(app: web.Application) -> None:
    """Add the care API's routes (the composition root serves the OpenAPI document)."""
    app.router.add_routes(routes())
