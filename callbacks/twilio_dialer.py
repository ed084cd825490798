"""The Dialer that places calls through Twilio's REST API (async client).

`api_base` points the client at another host speaking Twilio's REST paths (the project's
emulator in tests and demos). Each call gets a status callback (initiated, ringing,
answered, completed) and answering-machine detection (`MachineDetection=Enable`); the
voice URL receives `AnsweredBy` and plays the short machine message where the job's
policy says so. The HTTP timeout stays well below the claim lease, so a slow carrier
cannot outlive the lease and let another worker dial the same attempt.

`dial` posts Calls.json itself over one keep-alive aiohttp session (the same form, the
same basic auth, Twilio's error body read the same way as the twilio client's): the
twilio client's request building (FormData, per-call urlencoding) and its parsing of the
whole Call resource cost a worker 0.7-1.0 ms of CPU per dial in bench/scheduler_bench.py,
this ~0.6 ms. `find_call` (only on recovery) still goes
through the twilio client.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote_plus, urlencode

import aiohttp

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
        base_api = (api_base or "https://api.twilio.com").rstrip("/")
        self._calls_url = f"{base_api}/2010-04-01/Accounts/{account_sid}/Calls.json"
        self._headers = {
            "Authorization": aiohttp.encode_basic_auth(account_sid, auth_token),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        self._timeout = aiohttp.ClientTimeout(total=http_timeout_s)
        # the form fields that are the same for every call, encoded once
        self._fixed_form = "&" + urlencode(
            [
                ("From", caller_id),
                ("Method", "POST"),
                ("StatusCallbackMethod", "POST"),
                ("MachineDetection", machine_detection),
                ("Timeout", str(ring_timeout_s)),
                *(
                    ("StatusCallbackEvent", event)
                    for event in ("initiated", "ringing", "answered", "completed")
                ),
            ]
        )
        self._session: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        await self._rest.aclose()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(keepalive_timeout=30)
            )
        return self._session

    def _form(self, job: Job) -> bytes:
        status_callback = f"{self.status_url}?{urlencode({'job': job.id})}"
        return (
            f"To={quote_plus(job.phone)}&Url={quote_plus(self.voice_url(job))}"
            f"&StatusCallback={quote_plus(status_callback)}{self._fixed_form}"
        ).encode()

    async def dial(self, job: Job) -> str:
        extra = {"job_id": job.id, "phone": mask_phone(job.phone), "attempt": job.attempt}
        async with self._http().post(
            self._calls_url, data=self._form(job), headers=self._headers, allow_redirects=False
        ) as resp:
            status, body = resp.status, await resp.read()
        if not 200 <= status < 300:
            code = _error_code(body)
            permanent = code in PERMANENT_ERRORS or status in (400, 404)
            log.info("twilio refused the call", extra={**extra, "code": code})
            raise DialError(
                f"twilio {status} code {code}",
                outcome=CallOutcome.FAILED,
                retryable=not permanent,
            )
        sid = str(json.loads(body)["sid"])
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


def _error_code(body: bytes) -> int | None:
    """The `code` of Twilio's JSON error body, if there is one."""
    try:
        payload: Any = json.loads(body)
    except ValueError:
        return None
    code = payload.get("code") if isinstance(payload, dict) else None
    return code if isinstance(code, int) else None
