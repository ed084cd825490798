"""Fixtures for the callbacks tests: calling configurations, a store on the test prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from callbacks.jobs import JobKind, NewJob
from callbacks.store import CallbackStore
from config.calling import CallingConfig, load_calling, parse_calling
from config.keys import Keys
from config.yamlload import load_yaml_text

ROOT = Path(__file__).resolve().parents[2]


def calling_from(text: str) -> CallingConfig:
    return parse_calling(load_yaml_text(text, "test.yaml"), "test.yaml")


ALWAYS = """
calling:
  window:
    timezone: Asia/Shanghai
    hours: {daily: "00:00-24:00"}
  min_window_left: 0s
  countries: {"+86": Asia/Shanghai, "+1": America/New_York, "+44": Europe/London}
  rate_limit: {calls_per_second: 10000, burst: 10000}
  retry:
    survey: {backoff: [1s], max_attempts: 2, on_machine: give_up}
    care_follow_up: {backoff: [30m, 1h], max_attempts: 3, on_machine: message}
    queue_callback: {backoff: [2m], max_attempts: 3, on_machine: retry}
  limits: {lease: 2s}
"""


@pytest.fixture
def demo_calling() -> CallingConfig:
    return load_calling(ROOT / "config" / "calling.yaml")


@pytest.fixture
def calling() -> CallingConfig:
    """Open around the clock, effectively unlimited rate: for scheduler mechanics."""
    return calling_from(ALWAYS)


def with_limits(config: CallingConfig, **changes: Any) -> CallingConfig:
    return replace(config, limits=replace(config.limits, **changes))


@pytest.fixture
async def store(
    redis: aioredis.Redis, keys: Keys, calling: CallingConfig, key_prefix: str
) -> AsyncIterator[CallbackStore]:
    yield CallbackStore(redis, keys, calling.limits)
    # Remove this test's keys in pipelined batches before the shared fixture's one-by-one
    # sweep (tens of thousands of keys in the 10,000-job tests).
    batch: list[str] = []
    async for key in redis.scan_iter(match=f"{key_prefix}*", count=2000):
        batch.append(key)
        if len(batch) >= 2000:
            await redis.unlink(*batch)
            batch = []
    if batch:
        await redis.unlink(*batch)


def new_job(
    due_ms: int, phone: str = "+8613800000001", kind: JobKind = JobKind.CARE_FOLLOW_UP, **kw: Any
) -> NewJob:
    return NewJob(kind=kind, phone=phone, due_ms=due_ms, **kw)
