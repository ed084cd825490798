"""Shared helpers for the routing tests (no tests here): a small test configuration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis

from config.calendar import Calendar, TimeRange
from config.keys import Keys
from config.queues import QueuesConfig, load_queues_text
from queueing.store import QueueStore

ALWAYS = Calendar(
    name="always",
    timezone="UTC",
    weekly=tuple(
        (TimeRange(__import__("datetime").time(0, 0), __import__("datetime").time.max),)
        for _ in range(7)
    ),
    holidays=frozenset(),
)
CALENDARS: Mapping[str, Calendar] = {"always": ALWAYS, "bank": ALWAYS}

TEST_YAML = """
routing: {reserve_lease_s: 0.3, ring_timeout_s: 0.3, abandoned_list_max: 5}
queues:
  general: {calendar: always, skills: {general: 1}, priority: 2, wrap_up_s: 0,
            priority_rules: [{when: {segment: high_value}, priority: 6}]}
  cards:   {calendar: always, skills: {cards: 1}, priority: 7, wrap_up_s: 0.2,
            strategy: skill_level}
  complaints: {calendar: always, skills: {complaints: 1}, priority: 4, wrap_up_s: 0,
            strategy: fewest_calls, target_answer_s: 1, short_abandon_s: 0.2}
  vip:     {calendar: always, team: care, priority: 9, overflow_after_s: 0.4,
            overflow_to: general, wrap_up_s: 0}
agents:
  g1: {name: G One, phone: "+15550000001", skills: {general: 1}, token: token-g1-000000}
  g2: {name: G Two, phone: "+15550000002", skills: {general: 2}, token: token-g2-000000}
  g3: {name: G Three, phone: "+15550000003", skills: {general: 1, complaints: 1}}
  k1: {name: K One, phone: "+15550000011", skills: {cards: 2}}
  k2: {name: K Two, phone: "+15550000012", skills: {cards: 5}}
  m1: {name: M One, phone: "+15550000021", skills: {complaints: 3}}
  m2: {name: M Two, phone: "+15550000022", skills: {complaints: 3}}
  c1: {name: C One, client: cone, team: care, skills: {general: 3}}
"""


def test_config(**routing: Any) -> QueuesConfig:
    text = TEST_YAML
    if routing:
        parts = ", ".join(f"{k}: {v}" for k, v in routing.items())
        text = text.replace("routing: {", "routing: {" + parts + ", ", 1)
        # later keys win in our mapping? no: duplicates are errors, so rebuild the line
        lines = text.splitlines()
        base = {"reserve_lease_s": 0.3, "ring_timeout_s": 0.3, "abandoned_list_max": 5}
        base.update(routing)
        lines[1] = "routing: {" + ", ".join(f"{k}: {v}" for k, v in base.items()) + "}"
        text = "\n".join(lines)
    return load_queues_text(text, "test-queues.yaml", CALENDARS)


test_config.__test__ = False  # type: ignore[attr-defined]


def make_store(redis: aioredis.Redis, keys: Keys, **routing: Any) -> QueueStore:
    return QueueStore(redis, keys, test_config(**routing), group="t")
