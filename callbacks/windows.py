"""Calling windows: in which time zone a customer lives and when we may ring them.

Pure functions over `config.calendar.Calendar`; the window's weekly hours and holidays are
read in the customer's local time, so 09:00-20:00 means 09:00-20:00 where the phone rings,
across daylight-saving changes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callbacks.phone import country_zone
from config.calendar import Calendar
from config.calling import CallingConfig

# How far ahead to look for an open window before giving up (a window that never opens is
# a configuration error; the caller turns None into a failed job).
HORIZON_DAYS = 62


def valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def customer_zone(phone: str, explicit: str | None, config: CallingConfig) -> str:
    """The customer's zone: explicit (if valid), else the number's country, else the bank's."""
    if explicit and valid_zone(explicit):
        return explicit
    return country_zone(phone, config.countries) or config.bank_timezone


def window_in(zone: str, window: Calendar) -> Calendar:
    """The same weekly hours and holidays, read in `zone`."""
    if zone == window.timezone:
        return window
    return replace(window, timezone=zone)


def customer_window(phone: str, explicit: str | None, config: CallingConfig) -> Calendar:
    return window_in(customer_zone(phone, explicit, config), config.window)


def may_dial(when: datetime, window: Calendar, min_left: timedelta = timedelta(0)) -> bool:
    """True if a dial may start at `when`: the window is open and at least `min_left` remains."""
    close = window.close_of(when)
    return close is not None and close - when >= min_left


def next_dial_time(
    after: datetime,
    window: Calendar,
    *,
    min_left: timedelta = timedelta(0),
    not_after: datetime | None = None,
) -> datetime | None:
    """The first moment at or after `after` when a dial may start, or None if there is none
    before `not_after` (or within HORIZON_DAYS)."""
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    moment = after
    for _ in range(HORIZON_DAYS * 4):
        opening = window.next_open(moment, horizon_days=HORIZON_DAYS)
        if opening is None:
            return None
        opening = max(opening, moment)
        if not_after is not None and opening > not_after:
            return None
        close = window.close_of(opening)
        if close is None:  # defensive: next_open landed on a closed instant
            moment = opening + timedelta(minutes=1)
            continue
        if close - opening >= min_left:
            return opening
        moment = close
    return None
