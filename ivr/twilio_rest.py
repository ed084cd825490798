"""The twilio REST client, async, pointable at another host (the project's emulator).

twilio's AsyncTwilioHttpClient hands aiohttp a BasicAuth object, which aiohttp 3.14
deprecates; ours sends the same credentials as an Authorization header instead.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import encode_basic_auth
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client


class HeaderAuthHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (twilio's signature)
        allow_redirects: bool = False,
    ) -> Any:
        headers = dict(headers or {})
        if auth is not None:
            headers["Authorization"] = encode_basic_auth(auth[0], auth[1])
        # twilio's async client ignores the timeout given to its constructor (only a
        # per-request one reaches aiohttp, and the Client never passes one): bound every
        # request here, so a hung API cannot hold a dispatch past its lease.
        limit = timeout if timeout is not None else self.timeout
        async with asyncio.timeout(limit):
            return await super().request(
                method, url, params, data, headers, None, None, allow_redirects
            )


class TwilioRest:
    """One async twilio Client and its HTTP session; close it with `aclose()`."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        api_base: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._http = HeaderAuthHttpClient(timeout=timeout_s)
        self.client = Client(account_sid, auth_token, http_client=self._http)
        if api_base:
            self.client.api.base_url = api_base.rstrip("/")

    def __repr__(self) -> str:  # the client holds the auth token: never print it
        return "TwilioRest()"

    async def aclose(self) -> None:
        session: Any = self._http.session
        if session is not None:
            await session.close()
