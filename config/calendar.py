"""Opening hours and holidays in a time zone: parsing, validation and pure time arithmetic.

A calendar is a set of weekly time ranges in one IANA time zone minus holidays. It serves
queues (business hours, after-hours path) and outbound calling windows alike. All
arithmetic happens in local wall-clock time and is converted with zoneinfo, so daylight
saving changes are handled: a range 08:00-20:00 means 08:00-20:00 local on each day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.errors import ConfigIssue
from config.yamlload import FieldReader, LocatedList, LocatedMap, line_of

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class TimeRange:
    start: time
    end: time  # exclusive; time(0, 0) is not allowed as an end: use 24:00 -> time.max

    def contains(self, moment: time) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True)
class Calendar:
    name: str
    timezone: str
    weekly: tuple[tuple[TimeRange, ...], ...]  # index 0 = Monday
    holidays: frozenset[date]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_open(self, when: datetime) -> bool:
        local = when.astimezone(self.zone)
        if local.date() in self.holidays:
            return False
        moment = local.time().replace(tzinfo=None)
        return any(r.contains(moment) for r in self.weekly[local.weekday()])

    def next_open(self, after: datetime, *, horizon_days: int = 366) -> datetime | None:
        """The first moment at or after `after` when the calendar is open (None if never)."""
        if self.is_open(after):
            return after
        zone = self.zone
        local = after.astimezone(zone)
        for offset in range(horizon_days + 1):
            day = local.date() + timedelta(days=offset)
            if day in self.holidays:
                continue
            for rng in sorted(self.weekly[day.weekday()], key=lambda r: r.start):
                start = _local(day, rng.start, zone)
                if start >= after:
                    return start
                end = _local(day, rng.end, zone) if rng.end != time.max else None
                if end is None or end > after:
                    return after if self.is_open(after) else start
        return None

    def close_of(self, when: datetime) -> datetime | None:
        """When the open range containing `when` ends (None if closed at `when`)."""
        local = when.astimezone(self.zone)
        if local.date() in self.holidays:
            return None
        moment = local.time().replace(tzinfo=None)
        for rng in self.weekly[local.weekday()]:
            if rng.contains(moment):
                if rng.end == time.max:
                    return _local(local.date() + timedelta(days=1), time(0, 0), self.zone)
                return _local(local.date(), rng.end, self.zone)
        return None


def _local(day: date, moment: time, zone: ZoneInfo) -> datetime:
    """A local wall-clock time as an aware datetime; a time skipped by DST moves forward."""
    naive = datetime.combine(day, moment)
    aware = naive.replace(tzinfo=zone)
    # Round-trip through UTC: a non-existent local time (spring forward) normalises forward.
    back = aware.astimezone(ZoneInfo("UTC")).astimezone(zone)
    if back.replace(tzinfo=None) != naive:
        aware = naive.replace(tzinfo=zone, fold=1).astimezone(ZoneInfo("UTC")).astimezone(zone)
    return aware


def _parse_range(text: str) -> TimeRange | None:
    match = _RANGE.match(text)
    if not match:
        return None
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        return None
    start = time(h1, m1)
    end = time.max if h2 == 24 else time(h2, m2)
    if end <= start:
        return None
    return TimeRange(start, end)


def _expand_days(spec: str) -> list[int] | None:
    days: list[int] = []
    for part in spec.lower().replace(" ", "").split(","):
        if part in ("daily", "all", "*"):
            days.extend(range(7))
        elif "-" in part:
            a, _, b = part.partition("-")
            if a not in DAYS or b not in DAYS:
                return None
            i, j = DAYS.index(a), DAYS.index(b)
            if j < i:
                return None
            days.extend(range(i, j + 1))
        elif part in DAYS:
            days.append(DAYS.index(part))
        else:
            return None
    return days


def parse_calendar(name: str, data: Any, reader: FieldReader, where: str) -> Calendar:
    """Build a Calendar from `{timezone, hours: {days: ranges}, holidays: [dates]}`."""
    zone_name = reader.string(data, "timezone", where) or "UTC"
    try:
        ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        reader.error(data, "timezone", where, f"unknown time zone '{zone_name}'")
        zone_name = "UTC"
    reader.unknown_fields(data, {"timezone", "hours", "holidays"}, where)
    weekly: list[list[TimeRange]] = [[] for _ in DAYS]
    hours = reader.mapping(data, "hours", where)
    for spec, ranges in hours.items():
        field_where = f"{where}.hours.{spec}"
        day_indexes = _expand_days(str(spec))
        if day_indexes is None:
            reader.error(hours, spec, field_where, f"unknown days '{spec}' (use mon..sun, mon-fri)")
            continue
        items = ranges if isinstance(ranges, list) else [ranges]
        for item in items:
            parsed = _parse_range(str(item)) if isinstance(item, str) else None
            if parsed is None:
                reader.error(
                    hours,
                    spec,
                    field_where,
                    f"bad time range {item!r} (want HH:MM-HH:MM, start < end)",
                )
                continue
            for index in day_indexes:
                for existing in weekly[index]:
                    if parsed.start < existing.end and existing.start < parsed.end:
                        reader.error(hours, spec, field_where, f"range {item} overlaps another")
                weekly[index].append(parsed)
    holidays: set[date] = set()
    raw_holidays = data.get("holidays") if isinstance(data, dict) else None
    if raw_holidays is not None:
        if not isinstance(raw_holidays, LocatedList):
            reader.error(data, "holidays", where, "field 'holidays' must be a list of dates")
        else:
            for index, item in enumerate(raw_holidays):
                value = item.get("date") if isinstance(item, LocatedMap) else item
                if isinstance(value, str):
                    try:
                        value = date.fromisoformat(value)
                    except ValueError:
                        value = None
                if isinstance(value, datetime) or not isinstance(value, date):
                    reader.issues.append(
                        ConfigIssue(
                            reader.file,
                            line_of(raw_holidays, index),
                            f"{where}.holidays[{index}]",
                            f"bad date {item!r} (want YYYY-MM-DD)",
                        )
                    )
                    continue
                holidays.add(value)
    return Calendar(
        name=name,
        timezone=zone_name,
        weekly=tuple(tuple(sorted(day, key=lambda r: r.start)) for day in weekly),
        holidays=frozenset(holidays),
    )


def load_calendars(data: Any, file: str, issues: list[ConfigIssue]) -> dict[str, Calendar]:
    """Parse the `calendars:` mapping of a loaded YAML document."""
    reader = FieldReader(file, issues)
    section = reader.mapping(data, "calendars", "calendars")
    return {
        str(name): parse_calendar(str(name), body, reader, f"calendars.{name}")
        for name, body in section.items()
    }
