"""Unsigned, forged and malformed webhooks, and a Redis that is not there."""

from __future__ import annotations

import logging

import pytest

from tests.ivr.conftest import AppFactory
from tests.ivr.walker import Walker
from tests.twilio_signing import PUBLIC_URL, call_params, call_sid, signature, signed_post


async def test_unsigned_request_is_refused(service: AppFactory) -> None:
    client = await service()
    response = await client.post("/voice", data=call_params(call_sid(1)))
    assert response.status == 403


async def test_request_signed_with_another_token_is_refused(service: AppFactory) -> None:
    client = await service()
    response = await signed_post(client, "/voice", call_params(call_sid(1)), token="wrong-token")
    assert response.status == 403


async def test_tampered_parameters_are_refused(service: AppFactory) -> None:
    client = await service()
    params = call_params(call_sid(1), Digits="1")
    headers = {"X-Twilio-Signature": signature(PUBLIC_URL + "/ivr/main?s=0", params)}
    params["Digits"] = "0"
    response = await client.post("/ivr/main?s=0", data=params, headers=headers)
    assert response.status == 403


async def test_signature_for_another_url_is_refused(service: AppFactory) -> None:
    client = await service()
    params = call_params(call_sid(1))
    headers = {"X-Twilio-Signature": signature("https://evil.example/voice", params)}
    response = await client.post("/voice", data=params, headers=headers)
    assert response.status == 403


async def test_rejection_is_logged(service: AppFactory, caplog: pytest.LogCaptureFixture) -> None:
    client = await service()
    with caplog.at_level(logging.WARNING, logger="hotline.ivr"):
        await client.post("/voice", data=call_params(call_sid(1)))
    assert any("signature rejected" in r.getMessage() for r in caplog.records)


async def test_malformed_call_sid_still_gets_twiml_that_serves(service: AppFactory) -> None:
    client = await service()
    response = await signed_post(client, "/voice", call_params("not-a-call-sid"))
    assert response.status == 200
    body = await response.text()
    assert "<Enqueue>emergency</Enqueue>" in body


async def test_keypad_garbage_in_digits_gets_twiml_that_serves(service: AppFactory) -> None:
    client = await service()
    caller = Walker(client, call_sid(2))
    await caller.start()
    response = await signed_post(
        client, caller.action(), call_params(call_sid(2), Digits="<script>")
    )
    assert response.status == 200
    assert "technical difficulties" in await response.text() or "系统" in await response.text()


async def test_oversized_body_is_refused(service: AppFactory) -> None:
    client = await service()
    params = call_params(call_sid(3), Junk="x" * 100_000)
    response = await signed_post(client, "/voice", params)
    assert response.status == 413


async def test_redis_unavailable_sends_callers_to_a_person(
    service: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = await service(redis_url="redis://127.0.0.1:1/0", emergency_number="+8610950000")
    with caplog.at_level(logging.ERROR, logger="hotline.ivr"):
        response = await signed_post(client, "/voice", call_params(call_sid(4)))
    assert response.status == 200
    body = await response.text()
    assert "<Dial" in body and "+8610950000</Dial>" in body
    assert "<Say" in body
    assert any(getattr(r, "call_sid", "") == call_sid(4) for r in caplog.records)
    ready = await client.get("/readyz")
    assert ready.status == 503


async def test_fallback_url_serves_the_caller(service: AppFactory) -> None:
    client = await service()
    response = await signed_post(
        client, "/fallback", call_params(call_sid(5), ErrorCode="11200", ErrorUrl="https://x/voice")
    )
    assert response.status == 200
    assert "<Enqueue>emergency</Enqueue>" in await response.text()


async def test_phone_numbers_are_masked_in_logs(
    service: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = await service()
    with caplog.at_level(logging.INFO):
        caller = Walker(client, call_sid(6))
        await caller.start()
    from config.logs import JsonFormatter

    formatter = JsonFormatter()
    lines = "\n".join(formatter.format(r) for r in caplog.records)
    assert "+8613812345678" not in lines
    assert "***5678" in lines
