"""The full demo menu walked in each language."""

from __future__ import annotations

import pytest

from tests.ivr.conftest import AppFactory
from tests.ivr.walker import Walker
from tests.twilio_signing import call_sid

LANG_KEY = {"zh": "1", "en": "2", "ko": "3"}
BALANCE = {
    "zh": "您的可用余额为12,850.40元。",
    "en": "Your available balance is 12,850.40 yuan.",
    "ko": "고객님의 사용 가능 잔액은 12,850.40 위안입니다.",
}
GOODBYE = {
    "zh": "感谢您的来电，再见。",
    "en": "Thank you for calling. Goodbye.",
    "ko": "전화해 주셔서 감사합니다. 안녕히 계세요.",
}


@pytest.mark.parametrize("lang", ["zh", "en", "ko"])
async def test_balance_hours_and_goodbye(service: AppFactory, lang: str) -> None:
    caller = Walker(await service(), call_sid(100 + ord(lang[0])))
    await caller.start()
    await caller.press(LANG_KEY[lang])
    await caller.press("1")
    await caller.press("12345678")
    await caller.press("4321")
    assert caller.says()[0] == BALANCE[lang]
    await caller.press("1")  # back to the main menu
    assert caller.gather_node() == "main"
    await caller.press("3")
    assert caller.gather_node() == "anything_else"
    await caller.press("9")
    assert caller.says() == [GOODBYE[lang]]
    assert caller.tags()[-1] == "Hangup"
    gather_langs = {s.get("language") for s in caller.last.iter("Say")}  # type: ignore[union-attr]
    assert gather_langs == {{"zh": "zh-CN", "en": "en-US", "ko": "ko-KR"}[lang]}


@pytest.mark.parametrize(
    ("lang", "key", "queue"),
    [("zh", "2", "cards"), ("en", "4", "complaints"), ("ko", "0", "general"), ("en", "2", "cards")],
)
async def test_paths_to_a_person(service: AppFactory, lang: str, key: str, queue: str) -> None:
    caller = Walker(await service(), call_sid(200 + int(key) + ord(lang[0])))
    await caller.start()
    await caller.press(LANG_KEY[lang])
    await caller.press(key)
    assert await caller.enqueued() == queue


@pytest.mark.parametrize("lang", ["zh", "en", "ko"])
async def test_leave_a_message(service: AppFactory, lang: str) -> None:
    caller = Walker(await service(), call_sid(300 + ord(lang[0])))
    await caller.start()
    await caller.press(LANG_KEY[lang])
    await caller.press("9")
    await caller.record("https://api.twilio.test/Recordings/RE9", 7)
    assert caller.tags()[-1] == "Hangup"
