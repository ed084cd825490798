"""Signed HTTP requests to the service, as Twilio makes them.

`Webhooks.fetch_document` requests a TwiML document (POST form or GET query string,
signed with X-Twilio-Signature) and classifies failures with Twilio's codes: 11205 when
the connection fails or the request times out (Twilio waits 15 s), 11200 for a non-2xx
answer, 12300 for a Content-Type Twilio cannot run, 12100 for a body it cannot parse.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import aiohttp

from emulator.audio import playable_duration_s
from emulator.errors import TwimlError
from emulator.signing import SIGNATURE_HEADER, compute_signature
from emulator.twiml import Document, Play, Say, parse_twiml

log = logging.getLogger("hotline.emulator")

USER_AGENT = "TwilioProxy/1.1"
WEBHOOK_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Fetched:
    url: str
    method: str
    document: Document
    audio_s: float = 0.0


def with_query(url: str, params: Mapping[str, str]) -> str:
    if not params:
        return url
    sep = "&" if urlsplit(url).query else "?"
    return url + sep + urlencode(list(params.items()))


class Webhooks:
    def __init__(
        self, session: aiohttp.ClientSession, auth_token: str, timeout_s: float = WEBHOOK_TIMEOUT_S
    ) -> None:
        self._session = session
        self._token = auth_token
        self.timeout_s = timeout_s

    def _signed(
        self, url: str, method: str, params: Mapping[str, str]
    ) -> tuple[str, dict[str, str], dict[str, str] | None]:
        headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
        if method == "GET":
            full = with_query(url, params)
            headers[SIGNATURE_HEADER] = compute_signature(self._token, full)
            return full, headers, None
        headers[SIGNATURE_HEADER] = compute_signature(self._token, url, params)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return url, headers, dict(params)

    async def request(
        self, url: str, method: str, params: Mapping[str, str]
    ) -> tuple[int, str, bytes]:
        """One signed request; returns (status, content type, body) or raises TwimlError."""
        full, headers, data = self._signed(url, method.upper(), params)
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            async with self._session.request(
                method.upper(), full, data=data, headers=headers, timeout=timeout,
                allow_redirects=True,
            ) as resp:
                body = await resp.read()
                return resp.status, resp.headers.get("Content-Type", ""), body
        except TimeoutError:
            raise TwimlError(11205, f"timed out after {self.timeout_s:g}s: {url}") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise TwimlError(11205, f"{type(exc).__name__}: {url}") from None

    async def fetch_document(self, url: str, method: str, params: Mapping[str, str]) -> Fetched:
        status, ctype, body = await self.request(url, method, params)
        if not 200 <= status < 300:
            raise TwimlError(11200, f"HTTP {status} from {url}")
        kind = ctype.split(";")[0].strip().lower()
        if kind in {"text/xml", "application/xml", "text/html", ""}:
            return Fetched(url, method, parse_twiml(body.decode("utf-8", errors="replace")))
        if kind == "text/plain":
            text = body.decode("utf-8", errors="replace").strip()
            return Fetched(url, method, Document(verbs=(Say(text=text),)))
        seconds = playable_duration_s(ctype, body)
        if seconds is not None:
            return Fetched(url, method, Document(verbs=(Play(url=url),)), audio_s=seconds)
        raise TwimlError(12300, f"Content-Type {ctype!r} from {url}")

    async def notify(self, url: str, method: str, params: Mapping[str, str]) -> int | None:
        """A callback whose answer is ignored (status callbacks); returns the HTTP status."""
        try:
            status, _, _ = await self.request(url, method, params)
        except TwimlError as exc:
            log.warning("callback failed", extra={"url": url, "code": exc.code})
            return None
        return status

    async def get_media(self, url: str) -> tuple[int, str, bytes]:
        """GET a <Play> URL (unsigned, like Twilio's media fetches)."""
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            async with self._session.get(
                url,
                headers={
                    "User-Agent": USER_AGENT,
                    SIGNATURE_HEADER: compute_signature(self._token, url),
                },
                timeout=timeout,
            ) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), await resp.read()
        except TimeoutError:
            raise TwimlError(11205, f"timed out: {url}") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise TwimlError(11205, f"{type(exc).__name__}: {url}") from None
