"""The router's Dispatcher for Twilio: connect a reserved call to its agent over REST.

A waiting call is redirected (`calls(sid).update(twiml=<Dial>)`); a virtual callback
is an outbound call to the customer that, once answered, dials the agent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlencode

import aiohttp
from twilio.base.exceptions import TwilioRestException

from config.logs import mask_phone
from ivr.queue_twiml import dial_agent
from ivr.twilio_rest import TwilioRest
from queueing.router import CallGone
from queueing.store import Pairing

log = logging.getLogger("hotline.ivr.dispatch")


# "Call is not in-progress": the call has ended. Not 20404 (no such resource): that is
# what a wrong account or API base answers for every call, and would empty the queues.
GONE_CODES = frozenset({21220})
RETRY_STATUSES = frozenset({429, 503})  # Twilio refused the request without applying it
RETRY_DELAYS_S = (0.2, 0.6, 1.5)  # backoff; the sum stays well inside the 10 s lease


class TwilioDispatcher:
    """Redirects are retried with backoff only where a retry cannot apply twice: a 429 or
    503 (refused, not applied) or a connection that failed before the request went out.
    A timeout or another error may have been applied: the router releases the reservation
    instead, and the next sweep pairs again. Outbound callback calls are never retried
    here (a second `create` would ring the customer twice)."""

    def __init__(
        self,
        rest: TwilioRest,
        *,
        base_url: str,
        ring_timeout_s: float,
        default_lang: str,
        callback_caller_id: str,
    ) -> None:
        self._rest = rest
        self._base = base_url.rstrip("/")
        self._ring = ring_timeout_s
        self._lang = default_lang
        self._caller_id = callback_caller_id

    async def _redirect(
        self, update: Callable[[], Awaitable[object]], extra: Mapping[str, object]
    ) -> None:
        for attempt, delay in enumerate((*RETRY_DELAYS_S, None)):
            try:
                await update()
                return
            except TwilioRestException as exc:
                if exc.code in GONE_CODES:
                    raise CallGone(str(exc.code)) from exc
                if exc.status not in RETRY_STATUSES or delay is None:
                    raise
            except aiohttp.ClientConnectorError:
                if delay is None:
                    raise
            log.warning("redirect refused; retrying", extra={**extra, "attempt": attempt + 1})
            await asyncio.sleep(delay)

    async def connect(self, pairing: Pairing) -> None:
        lang = str(pairing.info.get("lang") or self._lang)
        extra = {
            "call_sid": pairing.call_sid,
            "agent": pairing.agent_id,
            "queue": pairing.queue,
            "kind": pairing.kind,
        }
        if pairing.kind == "call":
            twiml = dial_agent(
                self._base,
                call_sid=pairing.call_sid,
                queue=pairing.queue,
                reservation=pairing.reservation,
                agent_address=pairing.agent_address,
                ring_timeout_s=self._ring,
                lang=lang,
            )
            call = self._rest.client.calls(pairing.call_sid)
            await self._redirect(lambda: call.update_async(twiml=twiml), extra)
            log.info("call redirected to its agent", extra=extra)
            return
        number = pairing.callback_to or ""
        query = urlencode(
            {"call": pairing.call_sid, "res": pairing.reservation, "q": pairing.queue, "lang": lang}
        )
        line = str(pairing.info.get("line") or self._caller_id)
        created = await self._rest.client.calls.create_async(
            to=number,
            from_=line,
            url=f"{self._base}/queue/callback/answer?{query}",
            method="POST",
            status_callback=f"{self._base}/queue/callback/status?{query}",
            status_callback_event=["completed"],
            status_callback_method="POST",
            timeout=max(5, round(self._ring)),
        )
        log.info(
            "queue callback dialled",
            extra={**extra, "to": mask_phone(number), "leg_sid": str(created.sid)},
        )
