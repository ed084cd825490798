"""The router's Dispatcher for Twilio: connect a reserved call to its agent over REST.

A waiting call is redirected (`calls(sid).update(twiml=<Dial>)`); a virtual callback
is an outbound call to the customer that, once answered, dials the agent.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from config.logs import mask_phone
from ivr.queue_twiml import dial_agent
from ivr.twilio_rest import TwilioRest
from queueing.store import Pairing

log = logging.getLogger("hotline.ivr.dispatch")


class TwilioDispatcher:
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
            await self._rest.client.calls(pairing.call_sid).update_async(twiml=twiml)
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
