"""Service metrics by the definitions in ``DESIGN.md`` ("Definitions"), as pure functions.

The live statistics (counters in Redis), the simulator's report and the dashboards all
compute their figures here, so they agree:

- offered: calls that entered a queue; answered: an agent picked up; abandoned: the caller
  hung up while queued. A short abandon (wait < ``short_abandon_s``, 5 s by default) still
  counts as offered and abandoned, but is left out of the service level;
- service level at T = answered within T / (answered + abandoned after T), where "within"
  means wait <= T and "after" wait > T (short abandons excluded);
- ASA = total queue wait of answered calls / answered calls, the wait running from joining
  the queue to the agent picking up;
- abandonment rate = abandoned / offered; AHT = mean talk + wrap-up of answered calls;
- occupancy = agent time busy with calls (ringing, talking, wrap-up) / agent time staffed.

A ratio with an empty denominator is ``None`` (no data), never a made-up 0 or 100 %.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "DEFAULT_SHORT_ABANDON_S",
    "CallRecord",
    "ServiceSummary",
    "Tally",
    "abandonment_rate",
    "average_handle_time",
    "average_speed_of_answer",
    "is_short_abandon",
    "occupancy",
    "percentile",
    "service_level",
    "summarize",
    "summarize_by_priority",
    "tally",
]

DEFAULT_SHORT_ABANDON_S = 5.0


def is_short_abandon(wait_s: float, short_abandon_s: float = DEFAULT_SHORT_ABANDON_S) -> bool:
    """An abandon after less than ``short_abandon_s`` of waiting."""
    return wait_s < short_abandon_s


def service_level(
    answered_within_target: int, answered: int, abandoned_after_target: int
) -> float | None:
    """answered within T / (answered + abandoned after T, short abandons excluded)."""
    denominator = answered + abandoned_after_target
    return answered_within_target / denominator if denominator else None


def average_speed_of_answer(total_answered_wait_s: float, answered: int) -> float | None:
    """ASA: total queue wait of answered calls / answered calls."""
    return total_answered_wait_s / answered if answered else None


def abandonment_rate(abandoned: int, offered: int) -> float | None:
    """abandoned / offered (short abandons included: they are abandons)."""
    return abandoned / offered if offered else None


def average_handle_time(total_handle_s: float, answered: int) -> float | None:
    """AHT: total talk + wrap-up of answered calls / answered calls."""
    return total_handle_s / answered if answered else None


def occupancy(busy_s: float, staffed_s: float) -> float | None:
    """Agent time busy with calls / agent time staffed."""
    return busy_s / staffed_s if staffed_s > 0 else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between closest ranks."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {q!r}")
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


class CallRecord(Protocol):
    """What a call's outcome must expose to be summarised (the ideal dispatcher's
    ``CallOutcome`` and the live simulator's records both do)."""

    @property
    def wait_s(self) -> float: ...  # answered: pickup - join; abandoned: hang-up - join

    @property
    def answered(self) -> bool: ...  # False: abandoned while queued

    @property
    def handle_s(self) -> float: ...  # talk + wrap-up; 0 when abandoned

    @property
    def priority(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Tally:
    """The counters every figure is derived from (what the live stats keep per interval)."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandons: int = 0
    answered_within_target: int = 0
    abandoned_after_target: int = 0
    answered_wait_total_s: float = 0.0
    handle_total_s: float = 0.0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.offered + other.offered,
            self.answered + other.answered,
            self.abandoned + other.abandoned,
            self.short_abandons + other.short_abandons,
            self.answered_within_target + other.answered_within_target,
            self.abandoned_after_target + other.abandoned_after_target,
            self.answered_wait_total_s + other.answered_wait_total_s,
            self.handle_total_s + other.handle_total_s,
        )


def tally(
    records: Iterable[CallRecord],
    *,
    target_s: float,
    short_abandon_s: float = DEFAULT_SHORT_ABANDON_S,
) -> Tally:
    """Count the records against the target answer time."""
    offered = answered = abandoned = short = within = after = 0
    wait_total = handle_total = 0.0
    for r in records:
        offered += 1
        if r.answered:
            answered += 1
            wait_total += r.wait_s
            handle_total += r.handle_s
            if r.wait_s <= target_s:
                within += 1
        else:
            abandoned += 1
            if is_short_abandon(r.wait_s, short_abandon_s):
                short += 1
            elif r.wait_s > target_s:
                after += 1
    return Tally(offered, answered, abandoned, short, within, after, wait_total, handle_total)


@dataclass(frozen=True, slots=True)
class ServiceSummary:
    """The service figures of a set of calls; ratios are ``None`` when undefined."""

    target_s: float
    offered: int
    answered: int
    abandoned: int
    short_abandons: int
    answered_within_target: int
    abandoned_after_target: int
    service_level: float | None
    asa_s: float | None
    abandon_rate: float | None
    aht_s: float | None
    occupancy: float | None
    p95_wait_s: float | None  # of answered calls
    max_wait_s: float | None  # of all calls

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def summarize(
    records: Iterable[CallRecord],
    *,
    target_s: float,
    short_abandon_s: float = DEFAULT_SHORT_ABANDON_S,
    busy_s: float = 0.0,
    staffed_s: float = 0.0,
) -> ServiceSummary:
    """Every figure for ``records``; occupancy from ``busy_s`` / ``staffed_s`` if given."""
    rows = list(records)
    t = tally(rows, target_s=target_s, short_abandon_s=short_abandon_s)
    waits = [r.wait_s for r in rows if r.answered]
    return ServiceSummary(
        target_s=target_s,
        offered=t.offered,
        answered=t.answered,
        abandoned=t.abandoned,
        short_abandons=t.short_abandons,
        answered_within_target=t.answered_within_target,
        abandoned_after_target=t.abandoned_after_target,
        service_level=service_level(t.answered_within_target, t.answered, t.abandoned_after_target),
        asa_s=average_speed_of_answer(t.answered_wait_total_s, t.answered),
        abandon_rate=abandonment_rate(t.abandoned, t.offered),
        aht_s=average_handle_time(t.handle_total_s, t.answered),
        occupancy=occupancy(busy_s, staffed_s),
        p95_wait_s=percentile(waits, 95),
        max_wait_s=max((r.wait_s for r in rows), default=None),
    )


def summarize_by_priority(
    records: Iterable[CallRecord],
    *,
    target_s: float,
    short_abandon_s: float = DEFAULT_SHORT_ABANDON_S,
) -> Mapping[int, ServiceSummary]:
    """One summary per priority (highest first); occupancy is not split by priority."""
    groups: dict[int, list[CallRecord]] = {}
    for r in records:
        groups.setdefault(r.priority, []).append(r)
    return {
        p: summarize(groups[p], target_s=target_s, short_abandon_s=short_abandon_s)
        for p in sorted(groups, reverse=True)
    }
