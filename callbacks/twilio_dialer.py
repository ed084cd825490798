"""The Dialer that places calls through Twilio's REST API (async client).

`api_base` points the client at another host speaking Twilio's REST paths (the project's
emulator in tests and demos). Each call gets a status callback (initiated, ringing,
answered, completed) and answering-machine detection (`MachineDetection=Enable`); the
voice URL receives `AnsweredBy` and plays the short machine message where the job's
policy says so. The HTTP timeout stays well below the claim lease, so a slow carrier
cannot outlive the lease and let another worker dial the same attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlencode

from twilio.base.exceptions import TwilioRestException

from callbacks.jobs import Job, ms_to_dt
from callbacks.retry import CallOutcome
from callbacks.scheduler import DialError, idempotency_key
from config.logs import mask_phone
from ivr.twilio_rest import TwilioRest

log = logging.getLogger("hotline.callbacks")

# Twilio error codes that no retry can fix (invalid or blocked destination, not allowed)
PERMANENT_ERRORS = frozenset({13223, 13224, 13225, 13226, 21211, 21215, 21216, 21217, 21614})


def _default_voice_url(base: str) -> Callable[[Job], str]:
    def url(job: Job) -> str:
        return f"{base}/voice/outbound?{urlencode({'job': job.id, 'kind': job.kind.value})}"

    return url


class TwilioDialer:
    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        caller_id: str,
        public_url: str,
        api_base: str | None = None,
        voice_url: Callable[[Job], str] | None = None,
        status_path: str = "/voice/outbound/status",
        machine_detection: str = "Enable",
        ring_timeout_s: int = 30,
        http_timeout_s: float = 10.0,
    ) -> None:
        base = public_url.rstrip("/")
        self.caller_id = caller_id
        self.voice_url = voice_url or _default_voice_url(base)
        self.status_url = f"{base}{status_path}"
        self.machine_detection = machine_detection
        self.ring_timeout_s = ring_timeout_s
        self._rest = TwilioRest(
            account_sid, auth_token, api_base=api_base, timeout_s=http_timeout_s
        )
        self.client = self._rest.client

    async def aclose(self) -> None:
        await self._rest.aclose()

    async def dial(self, job: Job) -> str:
        extra = {"job_id": job.id, "phone": mask_phone(job.phone), "attempt": job.attempt}
        try:
            call = await self.client.calls.create_async(
                to=job.phone,
                from_=self.caller_id,
                url=self.voice_url(job),
                method="POST",
                status_callback=f"{self.status_url}?{urlencode({'job': job.id})}",
                status_callback_event=["initiated", "ringing", "answered", "completed"],
                status_callback_method="POST",
                machine_detection=self.machine_detection,
                timeout=self.ring_timeout_s,
            )
        except TwilioRestException as exc:
            permanent = exc.code in PERMANENT_ERRORS or exc.status in (400, 404)
            log.info("twilio refused the call", extra={**extra, "code": exc.code})
            raise DialError(
                f"twilio {exc.status} code {exc.code}",
                outcome=CallOutcome.FAILED,
                retryable=not permanent,
            ) from None
        sid = str(call.sid)
        log.info("call placed", extra={**extra, "call_sid": sid, "key": idempotency_key(job)})
        return sid

    async def find_call(self, job: Job) -> str | None:
        """A call to the job's number created since this attempt was claimed, if any.
        Twilio keeps no idempotency key on calls, so any such call counts: better one call
        too few than one too many."""
        since = ms_to_dt(job.updated_ms) - timedelta(minutes=1)
        calls = await self.client.calls.list_async(
            to=job.phone, from_=self.caller_id, start_time_after=since, limit=20
        )
        for call in calls:
            created = call.date_created
            if created is None or created >= since:
                return str(call.sid)
        return None
