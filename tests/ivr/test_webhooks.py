"""The keypad IVR through the real service, real Redis and signed requests."""

from __future__ import annotations

import redis.asyncio as aioredis

from config.keys import Keys
from tests.ivr.conftest import AppFactory
from tests.ivr.walker import Walker
from tests.twilio_signing import call_params, call_sid, signed_post


async def test_new_call_offers_the_language_choice_in_every_language(service: AppFactory) -> None:
    caller = Walker(await service(), call_sid(1))
    await caller.start()
    assert caller.gather_node() == "language"
    assert caller.says() == [
        "中文服务请按1。",
        "For English, press 2.",
        "한국어 서비스는 3번을 누르세요.",
    ]
    gather = caller.last.find("Gather")  # type: ignore[union-attr]
    assert gather is not None
    assert gather.get("input") == "dtmf" and gather.get("actionOnEmptyResult") == "true"
    languages = [s.get("language") for s in gather.iter("Say")]
    assert languages == ["zh-CN", "en-US", "ko-KR"]


async def test_choosing_english_then_opening_hours_says_them_and_offers_more(
    service: AppFactory,
) -> None:
    caller = Walker(await service(), call_sid(2))
    await caller.start()
    await caller.press("2")
    assert caller.gather_node() == "main"
    assert caller.says()[0].startswith("For your balance, press 1.")
    await caller.press("3")
    assert "Monday to Friday" in caller.says()[0]
    assert caller.gather_node() == "anything_else"


async def test_no_input_reprompts_then_follows_the_menu_fallback(service: AppFactory) -> None:
    caller = Walker(await service(), call_sid(3))
    await caller.start()
    await caller.press("2")
    await caller.no_input()
    assert caller.says()[0] == "Sorry, we did not receive your choice."
    assert caller.gather_node() == "main"
    await caller.no_input()
    assert caller.gather_node() == "main"
    await caller.no_input()  # retries (2) spent: the menu's on_no_input is a person
    assert await caller.enqueued() == "general"


async def test_wrong_key_reprompts_with_the_invalid_message(service: AppFactory) -> None:
    caller = Walker(await service(), call_sid(4))
    await caller.start()
    await caller.press("2")
    await caller.press("7")
    assert caller.says()[0] == "Sorry, that is not a valid choice."
    assert caller.gather_node() == "main"
    await caller.press("3")
    assert "Monday to Friday" in caller.says()[0]


async def test_balance_with_the_right_pin(service: AppFactory) -> None:
    caller = Walker(await service(), call_sid(5))
    await caller.start()
    await caller.press("2")
    await caller.press("1")
    assert caller.gather_node() == "account"
    await caller.press("12345678")
    assert caller.gather_node() == "pin"
    await caller.press("4321")
    assert caller.says()[0] == "Your available balance is 12,850.40 yuan."
    assert caller.gather_node() == "anything_else"


async def test_wrong_pins_are_refused_then_the_caller_reaches_a_person(service: AppFactory) -> None:
    caller = Walker(await service(), call_sid(6))
    await caller.start()
    await caller.press("2")
    await caller.press("1")
    await caller.press("12345678")
    for _ in range(2):
        await caller.press("9999")
        assert caller.says()[0] == "Sorry, the account number or PIN is not correct."
        assert caller.gather_node() == "pin"
    await caller.press("9999")
    assert await caller.enqueued() == "general"
    assert not any("balance is" in s for s in caller.heard)


async def test_pin_and_account_digits_are_never_stored(
    service: AppFactory, redis: aioredis.Redis, key_prefix: str
) -> None:
    caller = Walker(await service(), call_sid(7))
    await caller.start()
    await caller.press("2")
    await caller.press("1")
    await caller.press("87654321")
    await caller.press("2468")
    assert "balance is" in caller.says()[0]
    dump = []
    async for key in redis.scan_iter(match=f"{key_prefix}*"):
        kind = await redis.type(key)
        if kind == "hash":
            dump.append(str(await redis.hgetall(key)))
        elif kind == "string":
            dump.append(str(await redis.get(key)))
    text = "\n".join(dump)
    assert "2468" not in text
    assert "87654321" not in text
    assert "customer_id" in text  # the session is there, with what authentication proved


async def test_lost_card_goes_to_the_cards_queue(service: AppFactory) -> None:
    caller = Walker(await service(), call_sid(8))
    await caller.start()
    await caller.press("3")
    await caller.press("2")
    assert caller.says() == ["카드 분실 신고 담당자에게 연결해 드리겠습니다."]
    assert await caller.enqueued() == "cards"


async def test_after_hours_a_transfer_offers_a_message_instead(service: AppFactory) -> None:
    caller = Walker(await service(open_=False), call_sid(9))
    await caller.start()
    await caller.press("2")
    await caller.press("0")
    assert caller.says()[0] == "Our advisers are not available at this time."
    assert caller.gather_node() == "closed"
    await caller.press("1")
    assert caller.action("Record").startswith("/ivr/message?s=")


async def test_holiday_closes_the_queues(service: AppFactory) -> None:
    caller = Walker(await service(holiday_today=True), call_sid(10))
    await caller.start()
    await caller.press("2")
    await caller.press("4")
    assert caller.gather_node() == "closed"


async def test_a_voice_message_becomes_one_care_task_even_when_twilio_retries(
    service: AppFactory, redis: aioredis.Redis, keys: Keys
) -> None:
    client = await service()
    caller = Walker(client, call_sid(11))
    await caller.start()
    await caller.press("2")
    await caller.press("9")
    record_path = caller.action("Record")
    extra = {"RecordingUrl": "https://api.twilio.test/Recordings/RE1", "RecordingDuration": "14"}
    first = await signed_post(client, record_path, call_params(call_sid(11), **extra))
    again = await signed_post(client, record_path, call_params(call_sid(11), **extra))
    assert await first.text() == await again.text()
    assert "call you back within 24 hours" in await first.text()
    assert "<Hangup />" in await first.text()
    tasks = await redis.xrange(keys.care_tasks())
    assert len(tasks) == 1
    assert tasks[0][1]["recording_url"] == "https://api.twilio.test/Recordings/RE1"
    assert tasks[0][1]["lang"] == "en"


async def test_a_retried_gather_gets_the_same_answer_and_no_second_step(
    service: AppFactory, redis: aioredis.Redis, keys: Keys
) -> None:
    client = await service()
    caller = Walker(client, call_sid(12))
    await caller.start()
    path = caller.action()
    params = call_params(call_sid(12), Digits="2")
    first = await signed_post(client, path, params)
    again = await signed_post(client, path, params)
    assert await first.text() == await again.text()
    assert await redis.hget(keys.call_session(call_sid(12)), "seq") == "1"
    repeated_voice = await signed_post(client, "/voice", call_params(call_sid(12)))
    assert "中文服务请按1" in await repeated_voice.text()
    assert await redis.hget(keys.call_session(call_sid(12)), "seq") == "1"


async def test_status_callbacks_count_how_a_call_ended_once(
    service: AppFactory, redis: aioredis.Redis, keys: Keys
) -> None:
    client = await service()
    caller = Walker(client, call_sid(13))
    await caller.start()
    await caller.press("2")
    for _ in range(2):
        response = await signed_post(
            client, "/status", call_params(call_sid(13), CallStatus="completed", CallDuration="31")
        )
        assert response.status == 204
    assert await redis.get(keys.call_ended(call_sid(13))) == "abandoned_in_menu"
    import datetime as dt

    day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    assert await redis.hget(keys.call_outcomes(day), "abandoned_in_menu") == "1"


async def test_health_and_readiness(service: AppFactory) -> None:
    client = await service()
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["redis"] == "ok"


async def test_an_unknown_account_fails_like_a_wrong_pin(service: AppFactory) -> None:
    caller = Walker(await service(), call_sid(14))
    await caller.start()
    await caller.press("2")
    await caller.press("1")
    await caller.press("99999999")
    assert caller.gather_node() == "pin"  # no hint that the account does not exist
    await caller.press("4321")
    assert caller.says()[0] == "Sorry, the account number or PIN is not correct."


async def test_repeated_wrong_pins_lock_the_account_across_calls(service: AppFactory) -> None:
    client = await service()
    for n in range(2):  # 3 wrong PINs per call, 2 calls: locked after the fifth
        caller = Walker(client, call_sid(20 + n))
        await caller.start()
        await caller.press("2")
        await caller.press("1")
        await caller.press("12345678")
        for _ in range(3):
            await caller.press("0000")
    caller = Walker(client, call_sid(30))
    await caller.start()
    await caller.press("2")
    await caller.press("1")
    await caller.press("12345678")
    await caller.press("4321")  # the right PIN, but the account is locked
    assert caller.says()[0] == "Sorry, the account number or PIN is not correct."
