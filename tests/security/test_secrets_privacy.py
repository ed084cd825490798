"""No secret and no customer credential leaks: the auth token never reaches a log, an
error page or a repr; after the demo paths run through the emulator, no PIN, no typed
account number and no Luhn-valid card number is in any log record or any Redis key or
value under the test's prefix (account numbers are exchanged for a reference)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from collections.abc import Iterable

import pytest
import redis.asyncio as aioredis

from config.logs import JsonFormatter
from config.settings import Settings
from emulator import AgentPhone, CallerScript
from ivr.appkeys import FLOW_DEPS, ROUTER
from ivr.dispatch import TwilioDispatcher
from ivr.twilio_rest import TwilioRest
from tests.e2e.conftest import AUTH_TOKEN, Line, line
from tests.security.conftest import FullService
from tests.twilio_signing import call_params, call_sid, signed_post

__all__ = ["line"]

SECRET = "tok-SECRET-9f8e7d6c5b4a"
CARD = "4111111111111111"  # Luhn-valid test card number, typed by a caller
PINS = ("4321", "1357", "8642")
ACCOUNTS = ("12345678", "11112222", "87654321")
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_DIGITS = re.compile(r"(?<![0-9A-Za-z])\d{12,19}(?![0-9A-Za-z])")


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def looks_like_a_timestamp(run: str) -> bool:
    """Unix time in ms, us or ns (2017..2039): 13, 16 or 19 digits. No card number of
    those lengths falls in these ranges (Mastercard 2221-2720 is above 2.2e15)."""
    value = int(run)
    return any(15 * 10 ** (8 + k) <= value <= 22 * 10 ** (8 + k) for k in (3, 6, 9))


def record_texts(records: Iterable[logging.LogRecord]) -> list[str]:
    """Each record raw (message, every extra, the traceback) and as the JSON line."""
    formatter = JsonFormatter()
    texts = []
    for record in records:
        extras = {k: v for k, v in vars(record).items() if k not in _RESERVED}
        raw = record.getMessage() + " " + json.dumps(extras, default=str, ensure_ascii=False)
        if record.exc_info:
            raw += " " + formatter.formatException(record.exc_info)
        texts.append(raw)
        texts.append(formatter.format(record))
    return texts


def leaks(text: str, known_numbers: set[str]) -> list[str]:
    found = []
    for secret in (*PINS, *ACCOUNTS):
        if re.search(rf"(?<![0-9A-Za-z]){secret}(?![0-9A-Za-z])", text):
            found.append(secret)
    for run in _DIGITS.findall(text):
        card_like = 13 <= len(run) <= 19 and luhn_ok(run) and not looks_like_a_timestamp(run)
        if card_like and run not in known_numbers:
            found.append(run)
    return found


# --- the auth token ---------------------------------------------------------------------
async def test_reprs_never_show_the_token() -> None:
    settings = Settings(auth_token=SECRET, api_tokens={"api-SECRET-1": "supervisor"})
    rest = TwilioRest(settings.account_sid, SECRET)
    dispatcher = TwilioDispatcher(
        rest, base_url="https://x.test", ring_timeout_s=20, default_lang="en",
        callback_caller_id="+8640012345",
    )  # fmt: skip
    for text in (repr(settings), str(settings), repr(rest), repr(dispatcher), f"{settings}"):
        assert SECRET not in text and "api-SECRET-1" not in text, text
    await rest.aclose()


async def test_token_in_no_log_no_error_page_no_repr(
    full_service: FullService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = await full_service(auth_token=SECRET, api_tokens={"api-SECRET-1": "supervisor"})
    app = client.server.app  # type: ignore[attr-defined]
    bodies = []
    # forged, unsigned, malformed and failing requests, and every route's error page
    for path in ("/voice", "/ivr/main?s=0", "/status", "/fallback", "/queue/hold?q=general"):
        for headers in ({}, {"X-Twilio-Signature": "forged"}):
            r = await client.post(path, data=call_params(call_sid(1)), headers=headers)
            bodies.append(await r.text())
        r = await signed_post(client, path, call_params("bad-sid"), token=SECRET)
        bodies.append(await r.text())
    r = await client.post("/voice", data=b"\xff" * 70_000)
    bodies.append(await r.text())
    for path in ("/api/v1/callbacks", "/api/agents/a01/login", "/api/v1/dnc"):
        r = await client.post(
            path, data="{not json", headers={"Authorization": "Bearer api-SECRET-1"}
        )
        bodies.append(await r.text())
    # a REST failure logs the twilio exception: no credentials in it
    router = app[ROUTER]
    await router.join(call_sid(2), "general")
    await router.login("a02", ready=True)
    await asyncio.wait_for(router.drain(), 15)
    basic = base64.b64encode(f"{Settings().account_sid}:{SECRET}".encode()).decode()
    for text in bodies + record_texts(caplog.records):
        assert SECRET not in text and basic not in text and "api-SECRET-1" not in text
        assert "Traceback" not in text or text in record_texts(caplog.records)
    for body in bodies:
        assert "Traceback" not in body and 'File "' not in body
    for value in (app[FLOW_DEPS], app[FLOW_DEPS].signatures, router.dispatcher):
        assert SECRET not in repr(value)


# --- customer data after the demo paths -------------------------------------------------
DEMO_CALLS = (
    ("2", "1", "12345678", "4321", "9"),  # balance, then goodbye
    ("2", "1", "11112222", "1357", "9"),
    ("2", "1", "87654321", "8642", "87654321", "8642"),  # wrong PIN twice
    ("2", "1", CARD, "1357"),  # a card number typed as the account number
    ("2", CARD[:1], CARD),  # typed at menus
    ("2", "9"),  # leave a message
    ("2", "0", "5", "1"),  # a person, then the in-call survey
    ("2", "2"),  # lost card: a person
)


async def test_no_pin_account_or_card_number_in_logs_or_redis(
    line: Line, redis: aioredis.Redis, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    known = {"+15550100001", "+15550100002", "+15550100004", "+15550100008"}
    for number in known:
        line.emu.register_agent(AgentPhone(number=number, answer_after=1, handle_time=5))
    for agent in ("a01", "a02", "a04", "a08"):
        await line.router.login(agent, ready=True)
    callers = [f"+86138000000{n:02d}" for n in range(len(DEMO_CALLS))]
    calls = [
        await line.emu.place_inbound_call(
            voice_url=line.voice_url,
            from_=caller,
            to="+8640012345",
            status_callback=line.voice_url.replace("/voice", "/status"),
            script=CallerScript(presses=presses, patience=20, record_seconds=2),
        )  # fmt: skip
        for caller, presses in zip(callers, DEMO_CALLS, strict=True)
    ]
    transcripts = [await call.wait_finished(60) for call in calls]
    assert any("12,850.40" in " ".join(t.heard_text()) for t in transcripts)
    assert any(t.outcome.answered_by for t in transcripts)
    await asyncio.sleep(0.5)  # the last status callbacks
    known_digits = {re.sub(r"\D", "", n) for n in (*known, *callers, "+8640012345")}

    found: dict[str, list[str]] = {}
    for text in record_texts(caplog.records):
        hits = leaks(text, known_digits)
        if hits:
            found.setdefault("log", []).append(f"{hits}: {text[:300]}")
    scanned = 0
    async for key in redis.scan_iter(match=key_prefix + "*", count=500):
        kind = await redis.type(key)
        values: list[str] = [key]
        if kind == "string":
            values.append(str(await redis.get(key)))
        elif kind == "hash":
            values += [f"{k!s}={v!s}" for k, v in (await redis.hgetall(key)).items()]
        elif kind == "list":
            values += [str(v) for v in await redis.lrange(key, 0, -1)]
        elif kind == "set":
            values += [str(v) for v in await redis.smembers(key)]
        elif kind == "zset":
            values += [str(m) for m in await redis.zrange(key, 0, -1)]
        elif kind == "stream":
            values += [json.dumps(e, default=str) for e in await redis.xrange(key) or []]
        scanned += 1
        for value in values:
            hits = leaks(value, known_digits)
            if hits:
                found.setdefault("redis", []).append(f"{hits}: {key} {value[:300]}")
    assert scanned > 20
    assert not found, json.dumps(found, indent=1, ensure_ascii=False)


def test_the_scanner_finds_what_it_looks_for() -> None:
    """The scan itself fails when the data is there (so a leak cannot pass unnoticed)."""
    assert leaks(f"Digits={CARD}", set()) == [CARD]
    assert leaks("pin 4321 ok", set()) == ["4321"]
    assert leaks('{"account": "12345678"}', set()) == ["12345678"]
    assert leaks("ts 1764343210123 CA00000000000000000000000000004321", set()) == []
    assert leaks("ns 1764343210123456789 us 1764343210123456", set()) == []
    assert leaks("card 5555555555554444", set()) == ["5555555555554444"]
    assert AUTH_TOKEN  # the e2e token is a test value, not SECRET
