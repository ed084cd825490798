"""Outbound calling configuration: calling window, country time zones, retries, rate limit.

Loaded once at start-up from `calling.yaml`; every problem is reported with file, line and
field, and the service refuses to start. The values are frozen dataclasses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.calendar import Calendar, parse_calendar
from config.errors import ConfigError, ConfigIssue
from config.yamlload import FieldReader, LocatedList, LocatedMap, line_of, load_yaml_file

JOB_KINDS = ("survey", "care_follow_up", "complaint_follow_up", "queue_callback")
MAX_ATTEMPTS_LIMIT = 10
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PREFIX = re.compile(r"^\+[1-9]\d{0,3}$")


class MachinePolicy(str, Enum):
    """What to do when an answering machine picks up."""

    MESSAGE = "message"  # leave a short message; the job is done
    RETRY = "retry"  # hang up and retry like a no-answer
    GIVE_UP = "give_up"  # hang up; the job fails


@dataclass(frozen=True)
class RetryPolicy:
    backoff_s: tuple[float, ...]  # delay after attempt n is backoff_s[min(n, len) - 1]
    max_attempts: int
    on_machine: MachinePolicy

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after attempt number `attempt` (1-based) before the next."""
        index = min(max(attempt, 1), len(self.backoff_s)) - 1
        return self.backoff_s[index]


DEFAULT_RETRY = RetryPolicy(backoff_s=(900.0,), max_attempts=3, on_machine=MachinePolicy.RETRY)


@dataclass(frozen=True)
class CallingLimits:
    max_jobs: int = 100_000
    lease_s: float = 60.0
    call_timeout_s: float = 7200.0
    retention_s: float = 90 * 86400.0


@dataclass(frozen=True)
class CallingConfig:
    window: Calendar  # hours in the customer's zone; its own zone is the bank's
    countries: tuple[tuple[str, str], ...]  # (E.164 prefix, IANA zone), longest prefix first
    retry: Mapping[str, RetryPolicy]
    calls_per_second: float
    burst: int
    survey_delay_s: Mapping[str, float]  # queue -> delay; key "default" for the rest
    min_window_left_s: float = 120.0
    limits: CallingLimits = CallingLimits()
    caller_id: str = "+10000000000"  # the number outbound calls come from (E.164)
    care_queue: str = "care"  # where answered care follow-ups are bridged, with priority
    # language -> the short message an answering machine hears (policy on_machine: message)
    machine_message: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def machine_message_for(self, language: str | None) -> str:
        if language and language in self.machine_message:
            return self.machine_message[language]
        if self.machine_message:
            return next(iter(self.machine_message.values()))
        return "This is the bank calling you back. Please call us when it suits you. Goodbye."

    @property
    def bank_timezone(self) -> str:
        return self.window.timezone

    def retry_for(self, kind: str) -> RetryPolicy:
        return self.retry.get(kind, DEFAULT_RETRY)

    def survey_delay_for(self, queue: str | None) -> float:
        if queue is not None and queue in self.survey_delay_s:
            return self.survey_delay_s[queue]
        return self.survey_delay_s.get("default", 600.0)


def parse_duration(value: Any) -> float | None:
    """'30s', '15m', '2h', '1d' or a number of seconds; None if malformed or negative."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if value >= 0 else None
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    return None


def _duration(
    reader: FieldReader,
    data: Any,
    key: str,
    where: str,
    *,
    default: float,
    low: float = 0.0,
    high: float = 366 * 86400.0,
) -> float:
    raw = data.get(key) if isinstance(data, dict) else None
    if raw is None:
        return default
    seconds = parse_duration(raw)
    if seconds is None:
        reader.error(data, key, where, f"field '{key}' must be a duration like 30s, 15m, 2h, 1d")
        return default
    if not low <= seconds <= high:
        reader.error(data, key, where, f"field '{key}' must be between {low:g}s and {high:g}s")
        return default
    return seconds


def _parse_retry(reader: FieldReader, data: Any, where: str) -> RetryPolicy:
    reader.unknown_fields(data, {"backoff", "max_attempts", "on_machine"}, where)
    backoff: list[float] = []
    raw = data.get("backoff") if isinstance(data, dict) else None
    if not isinstance(raw, LocatedList) or not raw:
        reader.error(
            data, "backoff", where, "field 'backoff' must be a non-empty list of durations"
        )
    else:
        for index, item in enumerate(raw):
            seconds = parse_duration(item)
            if seconds is None or seconds < 1:
                reader.issues.append(
                    ConfigIssue(
                        reader.file,
                        line_of(raw, index),
                        f"{where}.backoff[{index}]",
                        f"bad duration {item!r} (want e.g. 30s, 15m, 2h, 1d; at least 1s)",
                    )
                )
                continue
            backoff.append(seconds)
    attempts = reader.number(data, "max_attempts", where, default=3, low=1, high=MAX_ATTEMPTS_LIMIT)
    if attempts != int(attempts):
        reader.error(data, "max_attempts", where, "field 'max_attempts' must be a whole number")
    machine_raw = reader.string(data, "on_machine", where, required=False, default="retry")
    try:
        machine = MachinePolicy(machine_raw)
    except ValueError:
        reader.error(
            data,
            "on_machine",
            where,
            f"field 'on_machine' must be one of {', '.join(m.value for m in MachinePolicy)}",
        )
        machine = MachinePolicy.RETRY
    return RetryPolicy(tuple(backoff) or (900.0,), int(attempts), machine)


def _parse_countries(reader: FieldReader, data: Any, where: str) -> tuple[tuple[str, str], ...]:
    section = reader.mapping(data, "countries", where, required=False)
    result: list[tuple[str, str]] = []
    for prefix, zone in section.items():
        field_where = f"{where}.countries.{prefix}"
        if not _PREFIX.match(str(prefix)):
            reader.error(section, prefix, field_where, "a country prefix looks like '+86' or '+1'")
            continue
        if not isinstance(zone, str):
            reader.error(section, prefix, field_where, "the value must be an IANA time zone name")
            continue
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            reader.error(section, prefix, field_where, f"unknown time zone '{zone}'")
            continue
        result.append((str(prefix), zone))
    result.sort(key=lambda item: len(item[0]), reverse=True)
    return tuple(result)


def parse_calling(data: Any, file: str) -> CallingConfig:
    """Build the calling configuration from a loaded document; raise ConfigError on problems."""
    issues: list[ConfigIssue] = []
    reader = FieldReader(file, issues)
    root = reader.mapping(data, "calling", "calling")
    where = "calling"
    reader.unknown_fields(
        root,
        {
            "window",
            "min_window_left",
            "countries",
            "rate_limit",
            "retry",
            "survey_delay",
            "limits",
            "caller_id",
            "care_queue",
            "machine_message",
        },
        where,
    )
    window = parse_calendar(
        "calling", reader.mapping(root, "window", where), reader, f"{where}.window"
    )
    min_left = _duration(reader, root, "min_window_left", where, default=120.0, high=4 * 3600.0)
    countries = _parse_countries(reader, root, where)

    rate = reader.mapping(root, "rate_limit", where, required=False)
    reader.unknown_fields(rate, {"calls_per_second", "burst"}, f"{where}.rate_limit")
    cps = reader.number(
        rate, "calls_per_second", f"{where}.rate_limit", default=1, low=0.01, high=10_000
    )
    burst = reader.number(
        rate, "burst", f"{where}.rate_limit", default=max(1.0, cps), low=1, high=100_000
    )

    retry: dict[str, RetryPolicy] = {}
    retry_section = reader.mapping(root, "retry", where, required=False)
    for kind, body in retry_section.items():
        kind_where = f"{where}.retry.{kind}"
        if kind not in JOB_KINDS:
            reader.error(
                retry_section, kind, kind_where, f"unknown job kind (use {', '.join(JOB_KINDS)})"
            )
            continue
        if not isinstance(body, LocatedMap):
            reader.error(retry_section, kind, kind_where, "must be a mapping")
            continue
        retry[str(kind)] = _parse_retry(reader, body, kind_where)

    delays: dict[str, float] = {}
    delay_section = reader.mapping(root, "survey_delay", where, required=False)
    for queue in delay_section:
        delays[str(queue)] = _duration(
            reader,
            delay_section,
            str(queue),
            f"{where}.survey_delay.{queue}",
            default=600.0,
            high=7 * 86400.0,
        )

    lim = reader.mapping(root, "limits", where, required=False)
    lim_where = f"{where}.limits"
    reader.unknown_fields(lim, {"max_jobs", "lease", "call_timeout", "retention"}, lim_where)
    max_jobs = reader.number(lim, "max_jobs", lim_where, default=100_000, low=1, high=10_000_000)
    limits = CallingLimits(
        max_jobs=int(max_jobs),
        lease_s=_duration(reader, lim, "lease", lim_where, default=60.0, low=1.0, high=3600.0),
        call_timeout_s=_duration(
            reader, lim, "call_timeout", lim_where, default=7200.0, low=60.0, high=86400.0
        ),
        retention_s=_duration(
            reader,
            lim,
            "retention",
            lim_where,
            default=90 * 86400.0,
            low=3600.0,
            high=800 * 86400.0,
        ),
    )
    caller_id = reader.string(root, "caller_id", where, required=False) or "+10000000000"
    if not re.match(r"^\+[1-9]\d{6,14}$", caller_id):
        reader.error(root, "caller_id", where, "field 'caller_id' must be an E.164 number")
    care_queue = reader.string(root, "care_queue", where, required=False) or "care"
    machine_section = reader.mapping(root, "machine_message", where, required=False)
    machine_message: dict[str, str] = {}
    for language in machine_section:
        text = reader.string(machine_section, str(language), f"{where}.machine_message")
        if text:
            machine_message[str(language)] = text
    if issues:
        raise ConfigError(issues)
    return CallingConfig(
        caller_id=caller_id,
        care_queue=care_queue,
        machine_message=MappingProxyType(machine_message),
        window=window,
        countries=countries,
        retry=MappingProxyType(retry),
        calls_per_second=cps,
        burst=int(burst),
        survey_delay_s=MappingProxyType(delays),
        min_window_left_s=min_left,
        limits=limits,
    )


def load_calling(path: Path) -> CallingConfig:
    return parse_calling(load_yaml_file(path), str(path))
