"""The Korean demo menu the fixtures speak (tests/fixtures/audio/make_fixtures.sh)."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parents[1] / "fixtures" / "audio"
MENU: dict[str, list[str]] = {
    "balance": ["잔액", "잔액 조회"],
    "lost_card": ["카드 분실"],
    "hours": ["영업 시간"],
    "agent": ["상담원"],
    "complaint": ["불만"],
}
SLUG_OPTION = {
    "balance": "balance",
    "balance-inquiry": "balance",
    "lost-card": "lost_card",
    "hours": "hours",
    "agent": "agent",
    "complaint": "complaint",
}
