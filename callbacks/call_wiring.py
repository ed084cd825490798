"""Wire the callbacks package's Twilio webhooks into the app (composition root calls this).

    install_call_webhooks(app)

sets `ivr.appkeys.AFTER_CALL` (the survey and complaint hook run when an agent hangs up),
adds /survey/*, /voice/outbound* and POST /api/v1/cases routes, and the comment transcriber with its
cleanup. Needs the app's FLOW_DEPS, ROUTER, CALLBACKS and SCHEDULER (filled by the other
contexts) at request time only.
"""

from __future__ import annotations

from aiohttp import web

from callbacks.case_api import case_routes
from callbacks.outbound_calls import outbound_routes
from callbacks.survey_calls import (
    TRANSCRIBER,
    AfterCallSurvey,
    CommentTranscriber,
    Transcribe,
    survey_routes,
    transcriber_context,
)
from ivr.appkeys import AFTER_CALL, AfterCallHook


def install_call_webhooks(app: web.Application, *, transcribe: Transcribe | None = None) -> None:
    """`transcribe` (url -> text) overrides `ivr.voice.transcribe_recording` (tests)."""
    hook: AfterCallHook = AfterCallSurvey(app)
    app[AFTER_CALL] = hook
    app[TRANSCRIBER] = CommentTranscriber(transcribe)
    app.cleanup_ctx.append(transcriber_context)
    app.add_routes(survey_routes())
    app.add_routes(outbound_routes())
    app.add_routes(case_routes())  # POST /api/v1/cases: an agent's complaint disposition
