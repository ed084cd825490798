"""Signed requests, exactly as Twilio signs them, for tests of the service's webhooks."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from twilio.request_validator import RequestValidator

PUBLIC_URL = "https://hotline.bank.test"
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "1" * 32


def call_sid(n: int) -> str:
    return "CA" + f"{n:032x}"


def signature(url: str, params: Mapping[str, str], token: str = AUTH_TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, dict(params)))


async def signed_post(
    client: TestClient,  # type: ignore[type-arg]
    path_qs: str,
    params: Mapping[str, str],
    *,
    token: str = AUTH_TOKEN,
    public_url: str = PUBLIC_URL,
) -> ClientResponse:
    url = public_url + path_qs
    headers = {"X-Twilio-Signature": signature(url, params, token)}
    return await client.post(path_qs, data=dict(params), headers=headers)


def call_params(sid: str, **extra: str) -> dict[str, str]:
    base = {
        "CallSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": "+8613812345678",
        "To": "+8640012345",
        "Direction": "inbound",
        "CallStatus": "in-progress",
        "ApiVersion": "2010-04-01",
    }
    base.update(extra)
    return base
