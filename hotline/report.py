"""`hotline report --month YYYY-MM [--out DIR]`: the monthly KPI report.

Writes `<out>/report-YYYY-MM/`: `index.html` with PNG charts (matplotlib, Agg backend) and
CSV tables: service level by day and queue, ASA, abandonment, calls offered and handled,
CSAT and the satisfaction index with their distribution, complaints per 1,000 answered calls
and the share answered within 24 h, callbacks made and reached, care cases opened and
closed, each against the previous month and the plan's targets (users.yaml `plan`).

Sources (all in Redis, compact):
- call figures: the daily roll-up of the 15-minute routing counters
  (`SupervisorStats.roll_up`, refreshed here for the days whose interval hashes still
  exist), summarized with the same functions as `/api/v1/stats`, so a day's totals equal
  what the statistics API said for it; UTC days;
- surveys: `callbacks.surveys_store` (monthly counters and each answer, bank time zone);
- complaints and care cases: `callbacks.cases` (opened in the month, bank time zone);
- callbacks: `callbacks.store`'s job index (created in the month, bank time zone; kept
  `calling.limits.retention`).
A day without a roll-up is listed as missing; a month without data says so.
"""

from __future__ import annotations

import csv
import html
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from callbacks.cases import RESPONSE_TARGET_MS, Case, CaseKind
from callbacks.jobs import Job, JobState
from callbacks.surveys_store import SurveyStore
from config.keys import Keys
from config.loader import HotlineConfig
from config.users import PlanTargets, SupervisorsConfig
from queueing.stats import QueueStats, summarize_counters
from queueing.store import CENTRE, QueueStore
from queueing.supervisor_stats import SupervisorStats, month_days, previous_month

SCAN_CHUNK = 500


@dataclass
class MonthData:
    month: str
    days: list[str]  # the month's days up to today
    daily: dict[str, dict[str, dict[str, int]]]  # day -> queue -> counters
    missing_days: list[str]
    totals: dict[str, dict[str, int]]  # queue (and '_centre') -> counters
    surveys: dict[str, Any]  # CSAT / index for the month
    score_counts: dict[int, int]
    complaints: int = 0
    complaints_answered_24h: int = 0
    complaints_late: int = 0
    complaints_pending: int = 0
    cases_opened: int = 0
    cases_closed: int = 0
    cases_by_kind: dict[str, int] = field(default_factory=dict)
    callbacks_created: int = 0
    callbacks_made: int = 0  # dialled at least once
    callbacks_reached: int = 0
    callbacks_by_kind: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def calls(self) -> dict[str, int]:
        """The centre's counters: the sum of every queue's (the '_centre' row holds agent
        time only)."""
        out: dict[str, int] = {}
        for queue, row in self.totals.items():
            if queue == CENTRE:
                continue
            for k, v in row.items():
                out[k] = max(out.get(k, 0), v) if k.startswith("max_") else out.get(k, 0) + v
        return out

    @property
    def has_call_data(self) -> bool:
        return bool(self.daily)

    def complaints_per_1000(self) -> float | None:
        answered = self.calls.get("answered", 0)
        return self.complaints * 1000 / answered if answered else None

    def complaint_24h_share(self) -> float | None:
        decided = self.complaints_answered_24h + self.complaints_late
        return self.complaints_answered_24h / decided if decided else None


def _month_bounds_ms(month: str, zone: ZoneInfo) -> tuple[int, int]:
    first = datetime.strptime(month, "%Y-%m").replace(tzinfo=zone)
    nxt = (first + timedelta(days=32)).replace(day=1)
    return int(first.timestamp() * 1000), int(nxt.timestamp() * 1000)


async def _members(redis: aioredis.Redis, key: str, low: int, high: int) -> list[str]:
    out: list[str] = []
    start = 0
    while True:
        page: list[Any] = await redis.zrangebyscore(
            key, low, f"({high}", start=start, num=SCAN_CHUNK
        )
        out.extend(str(m) for m in page)
        if len(page) < SCAN_CHUNK:
            return out
        start += len(page)


async def _hashes(redis: aioredis.Redis, keys: Sequence[str]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for i in range(0, len(keys), SCAN_CHUNK):
        async with redis.pipeline(transaction=False) as pipe:
            for key in keys[i : i + SCAN_CHUNK]:
                pipe.hgetall(key)
            rows.extend(await pipe.execute())
    return rows


async def collect_month(
    sup: SupervisorStats,
    surveys: SurveyStore,
    month: str,
    zone: ZoneInfo,
) -> MonthData:
    redis, keys = sup.redis, sup.keys
    now_ms = sup.store.now_ms()
    today = datetime.fromtimestamp(now_ms / 1000, tz=UTC).date().isoformat()
    days = [d for d in month_days(month) if d <= today]
    for day in days:
        await sup.roll_up(day)  # only days whose 15-minute counters are all still kept
    daily = await sup.daily(days)
    totals: dict[str, dict[str, int]] = {}
    for per in daily.values():
        for queue, row in per.items():
            into = totals.setdefault(queue, {})
            for k, v in row.items():
                into[k] = max(into.get(k, 0), v) if k.startswith("max_") else into.get(k, 0) + v
    sat = (await surveys.stats(month, "all")).get("*")
    low, high = _month_bounds_ms(month, zone)
    score_counts = {s: 0 for s in range(1, 6)}
    survey_ids = await _members(redis, keys.cb_survey_index(), low, high)
    for srow in await _hashes(redis, [keys.cb_survey(s) for s in survey_ids]):
        if srow.get("score"):
            score_counts[int(srow["score"])] += 1
    data = MonthData(
        month=month,
        days=days,
        daily=daily,
        missing_days=[d for d in days if d not in daily],
        totals=totals,
        surveys=sat.to_dict() if sat else {"answers": 0, "csat": None, "satisfaction_index": None},
        score_counts=score_counts,
    )
    # cases opened in the month (and closed in it, among those opened since the month before)
    prev_low, _ = _month_bounds_ms(previous_month(month), zone)
    case_ids = await _members(redis, keys.cb_cases_index(), prev_low, high)
    for crow in await _hashes(redis, [keys.cb_case(c) for c in case_ids]):
        if not crow:
            continue
        case = Case.from_redis(crow)
        if case.closed_ms is not None and low <= case.closed_ms < high:
            data.cases_closed += 1
        if not low <= case.opened_ms < high:
            continue
        data.cases_opened += 1
        data.cases_by_kind[case.kind.value] = data.cases_by_kind.get(case.kind.value, 0) + 1
        if case.kind is CaseKind.COMPLAINT:
            data.complaints += 1
            met = case.met_target()
            if met is True:
                data.complaints_answered_24h += 1
            elif met is False or now_ms > case.opened_ms + RESPONSE_TARGET_MS:
                data.complaints_late += 1
            else:
                data.complaints_pending += 1
    job_ids = await _members(redis, keys.cb_index(), low, high)
    for jrow in await _hashes(redis, [keys.cb_job(j) for j in job_ids]):
        if not jrow:
            continue
        job = Job.from_redis(jrow)
        data.callbacks_created += 1
        per_kind = data.callbacks_by_kind.setdefault(
            job.kind.value, {"created": 0, "made": 0, "reached": 0}
        )
        per_kind["created"] += 1
        if job.attempt > 0:
            data.callbacks_made += 1
            per_kind["made"] += 1
        if reached(job):
            data.callbacks_reached += 1
            per_kind["reached"] += 1
    return data


def reached(job: Job) -> bool:
    """The customer was reached: the call was answered by a person (or the agent said so)."""
    if job.agent_outcome in ("reached", "resolved"):
        return True
    return job.state is JobState.COMPLETED and job.outcome == "answered"


# --- figures -----------------------------------------------------------------------------
def _ratio(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.1f} %"


def _secs(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f} s"


def _num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _change(cur: float | None, prev: float | None) -> float | None:
    if cur is None or prev is None or prev == 0:
        return None
    return (cur - prev) / prev


@dataclass(frozen=True)
class KpiRow:
    name: str
    current: str
    previous: str
    change: str
    target: str
    status: str  # "met", "not met", "no data", "" (no target)


def kpi_rows(cur: MonthData, prev: MonthData, plan: PlanTargets, goal: float) -> list[KpiRow]:
    c, p = summarize_counters(cur.calls), summarize_counters(prev.calls)
    rows: list[KpiRow] = []

    def add(
        name: str,
        cv: float | None,
        pv: float | None,
        fmt: Any,
        target: str = "",
        ok: bool | None = None,
    ) -> None:
        ch = _change(cv, pv)
        status = "" if not target else ("no data" if ok is None else ("met" if ok else "not met"))
        rows.append(
            KpiRow(
                name, fmt(cv), fmt(pv), "–" if ch is None else f"{ch * 100:+.1f} %", target, status
            )
        )

    def count(x: float | None) -> str:
        return "–" if x is None else f"{int(x):,}"

    sl = c["service_level"]
    add("Calls offered", c["offered"], p["offered"], count)
    add("Calls answered", c["answered"], p["answered"], count)
    add("Calls handled (ended)", c["handled"], p["handled"], count)
    add("Calls abandoned", c["abandoned"], p["abandoned"], count)
    add(
        "Service level",
        sl,
        p["service_level"],
        _ratio,
        f">= {goal * 100:.0f} % (per queue goals)",
        None if sl is None else sl >= goal,
    )
    add("ASA", c["asa_s"], p["asa_s"], _secs)
    add("Abandonment rate", c["abandon_rate"], p["abandon_rate"], _ratio)
    add("AHT", c["aht_s"], p["aht_s"], _secs)
    idx, pidx = cur.surveys.get("satisfaction_index"), prev.surveys.get("satisfaction_index")
    base_idx = plan.baseline_satisfaction_index
    if base_idx is not None:
        t_idx = base_idx * (1 + plan.satisfaction_increase)
        add(
            "Satisfaction index (1-5)",
            idx,
            pidx,
            _num,
            f">= {t_idx:.2f} (baseline +{plan.satisfaction_increase:.0%})",
            None if idx is None else idx >= t_idx,
        )
    else:
        add(
            "Satisfaction index (1-5)",
            idx,
            pidx,
            _num,
            f"+{plan.satisfaction_increase:.0%} on baseline (not configured)",
            None,
        )
    csat, pcsat = cur.surveys.get("csat"), prev.surveys.get("csat")
    if plan.baseline_csat is not None:
        t_csat = plan.baseline_csat * (1 + plan.satisfaction_increase)
        add(
            "CSAT (share of 4-5)",
            csat,
            pcsat,
            _ratio,
            f">= {t_csat * 100:.1f} %",
            None if csat is None else csat >= t_csat,
        )
    else:
        add("CSAT (share of 4-5)", csat, pcsat, _ratio)
    add("Survey answers", cur.surveys.get("answers"), prev.surveys.get("answers"), count)
    cpk, pcpk = cur.complaints_per_1000(), prev.complaints_per_1000()
    if plan.baseline_complaints_per_1000 is not None:
        t_c = plan.baseline_complaints_per_1000 * (1 - plan.complaints_decrease)
        add(
            "Complaints per 1,000 answered calls",
            cpk,
            pcpk,
            _num,
            f"<= {t_c:.2f} (baseline -{plan.complaints_decrease:.0%})",
            None if cpk is None else cpk <= t_c,
        )
    else:
        add(
            "Complaints per 1,000 answered calls",
            cpk,
            pcpk,
            _num,
            f"-{plan.complaints_decrease:.0%} on baseline (not configured)",
            None,
        )
    add("Complaints", cur.complaints, prev.complaints, count)
    share = cur.complaint_24h_share()
    add(
        f"Complaints answered within {plan.complaint_response_h:g} h",
        share,
        prev.complaint_24h_share(),
        _ratio,
        f">= {plan.complaint_response_share * 100:.0f} %",
        None if share is None else share >= plan.complaint_response_share,
    )
    add("Callbacks made (dialled)", cur.callbacks_made, prev.callbacks_made, count)
    add("Callbacks reached", cur.callbacks_reached, prev.callbacks_reached, count)
    add("Care cases opened", cur.cases_opened, prev.cases_opened, count)
    add("Care cases closed", cur.cases_closed, prev.cases_closed, count)
    return rows


def daily_rows(data: MonthData, config: HotlineConfig) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for day in data.days:
        per = data.daily.get(day)
        if per is None:
            continue
        for queue in [*config.queues.queues, "all"]:
            if queue == "all":
                counters: dict[str, int] = {}
                for q, row in per.items():
                    if q == CENTRE:
                        continue
                    for k, v in row.items():
                        counters[k] = (
                            max(counters.get(k, 0), v)
                            if k.startswith("max_")
                            else counters.get(k, 0) + v
                        )
                target = None
            else:
                counters = per.get(queue, {})
                target = config.queues.queues[queue].target_answer_s
            f = summarize_counters(counters, target_s=target)
            rows.append(
                {
                    "day": day,
                    "queue": queue,
                    "offered": f["offered"],
                    "answered": f["answered"],
                    "handled": f["handled"],
                    "abandoned": f["abandoned"],
                    "short_abandons": f["abandoned_short"],
                    "service_level": f["service_level"],
                    "asa_s": f["asa_s"],
                    "abandon_rate": f["abandon_rate"],
                    "aht_s": f["aht_s"],
                }
            )
    return rows


# --- output ------------------------------------------------------------------------------
def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fields))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in fields})


def _charts(
    out: Path, cur: MonthData, prev: MonthData, daily: list[dict[str, Any]], goal: float
) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts: list[tuple[str, str]] = []
    queues = sorted({r["queue"] for r in daily})

    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=100)
    month_len = len(month_days(cur.month))
    every_day = list(range(1, month_len + 1))

    def series(q: str, key: str, scale: float = 1.0) -> list[float]:
        """One value per day of the month; NaN where there is no data (a gap, not a line)."""
        by_day = {int(r["day"][-2:]): r[key] for r in daily if r["queue"] == q}
        return [by_day[d] * scale if by_day.get(d) is not None else math.nan for d in every_day]

    for q in queues:
        ax.plot(
            every_day,
            series(q, "service_level", 100),
            marker="o",
            ms=3,
            lw=2.5 if q == "all" else 1.2,
            label=q,
        )
    ax.axhline(goal * 100, color="#d08c00", ls="--", lw=1, label=f"goal {goal * 100:.0f} %")
    ax.set_ylim(0, 105)
    ax.set_xlim(0.5, month_len + 0.5)
    ax.set_xlabel("day of month")
    ax.set_ylabel("service level %")
    ax.set_title(f"Service level by day and queue, {cur.month}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(out / "service_level_by_day.png")
    plt.close(fig)
    charts.append(("service_level_by_day.png", "Service level by day and queue"))

    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=100)
    allrows = {int(r["day"][-2:]): r for r in daily if r["queue"] == "all"}
    xs = sorted(allrows)
    ax.bar(
        [x - 0.2 for x in xs],
        [allrows[x]["offered"] for x in xs],
        width=0.4,
        label="offered",
        color="#4a7bd0",
    )
    ax.bar(
        [x + 0.2 for x in xs],
        [allrows[x]["answered"] for x in xs],
        width=0.4,
        label="answered",
        color="#2f9e60",
    )
    ax.plot(
        xs,
        [allrows[x]["abandoned"] for x in xs],
        color="#d04a4a",
        marker="o",
        ms=3,
        label="abandoned",
    )
    ax.set_xlim(0.5, month_len + 0.5)
    ax.set_xlabel("day of month")
    ax.set_ylabel("calls")
    ax.set_title(f"Calls offered, answered and abandoned by day, {cur.month}")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "calls_by_day.png")
    plt.close(fig)
    charts.append(("calls_by_day.png", "Calls by day"))

    fig, ax1 = plt.subplots(figsize=(9, 3.6), dpi=100)
    ax1.plot(
        every_day,
        series("all", "asa_s"),
        color="#4a7bd0",
        marker="o",
        ms=3,
        label="ASA (s)",
    )
    ax1.set_ylabel("ASA (s)")
    ax2 = ax1.twinx()
    ax2.plot(
        every_day,
        series("all", "abandon_rate", 100),
        color="#d04a4a",
        marker="s",
        ms=3,
        label="abandonment %",
    )
    ax2.set_ylabel("abandonment %")
    ax1.set_xlim(0.5, month_len + 0.5)
    ax1.set_xlabel("day of month")
    ax1.set_title(f"ASA and abandonment by day, {cur.month}")
    ax1.grid(alpha=0.3)
    fig.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(out / "asa_abandonment_by_day.png")
    plt.close(fig)
    charts.append(("asa_abandonment_by_day.png", "ASA and abandonment"))

    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=100)
    scores = [1, 2, 3, 4, 5]

    def shares(d: MonthData) -> list[float]:
        n = sum(d.score_counts.values())
        return [d.score_counts[s] * 100 / n if n else 0 for s in scores]

    ax.bar([s - 0.2 for s in scores], shares(prev), width=0.4, label=prev.month, color="#9aa9bb")
    ax.bar([s + 0.2 for s in scores], shares(cur), width=0.4, label=cur.month, color="#2f9e60")
    ax.set_xticks(scores)
    ax.set_xlabel("survey score")
    ax.set_ylabel("% of answers")
    ax.set_title("Satisfaction: distribution of scores")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(out / "csat_distribution.png")
    plt.close(fig)
    charts.append(("csat_distribution.png", "Distribution of survey scores"))
    return charts


def render(
    out_dir: Path,
    cur: MonthData,
    prev: MonthData,
    config: HotlineConfig,
    plan: PlanTargets,
    generated_at: datetime,
) -> Path:
    out = out_dir / f"report-{cur.month}"
    out.mkdir(parents=True, exist_ok=True)
    goals = [q.service_level_goal for q in config.queues.queues.values()]
    goal = min(goals) if goals else 0.8
    daily = daily_rows(cur, config)
    kpis = kpi_rows(cur, prev, plan, goal)
    _write_csv(out / "daily_by_queue.csv", daily, list(daily[0]) if daily else ["day", "queue"])
    _write_csv(
        out / "kpis.csv",
        [k.__dict__ for k in kpis],
        ["name", "current", "previous", "change", "target", "status"],
    )
    _write_csv(
        out / "csat_distribution.csv",
        [
            {"score": s, cur.month: cur.score_counts[s], prev.month: prev.score_counts[s]}
            for s in range(1, 6)
        ],
        ["score", cur.month, prev.month],
    )
    _write_csv(
        out / "callbacks.csv",
        [{"kind": k, **v} for k, v in sorted(cur.callbacks_by_kind.items())],
        ["kind", "created", "made", "reached"],
    )
    _write_csv(
        out / "complaints_and_cases.csv",
        [
            {"measure": "complaints", "value": cur.complaints},
            {"measure": "complaints_answered_within_24h", "value": cur.complaints_answered_24h},
            {"measure": "complaints_answered_late_or_overdue", "value": cur.complaints_late},
            {"measure": "complaints_not_yet_due", "value": cur.complaints_pending},
            {"measure": "cases_opened", "value": cur.cases_opened},
            {"measure": "cases_closed", "value": cur.cases_closed},
            *(
                {"measure": f"cases_opened_{k}", "value": v}
                for k, v in sorted(cur.cases_by_kind.items())
            ),
        ],
        ["measure", "value"],
    )
    charts = _charts(out, cur, prev, daily, goal) if daily else []
    notes: list[str] = []
    if not cur.has_call_data:
        notes.append(f"No call statistics are kept for {cur.month}.")
    elif cur.missing_days:
        notes.append(
            f"No call statistics for {len(cur.missing_days)} day(s): "
            + ", ".join(d[-2:] for d in cur.missing_days)
            + " (no traffic, or the service did not roll those days up while their"
            " 15-minute counters were kept)."
        )
    if not prev.has_call_data:
        notes.append(f"No call statistics for the previous month ({prev.month}): no comparison.")
    if cur.surveys.get("answers", 0) == 0:
        notes.append("No survey answers this month.")
    if plan.baseline_satisfaction_index is None or plan.baseline_complaints_per_1000 is None:
        notes.append(
            "The plan's baseline is not configured (users.yaml plan.baseline_*): progress"
            " is shown against the previous month only."
        )
    e = html.escape
    table = "".join(
        f"<tr><td>{e(k.name)}</td><td>{e(k.current)}</td><td>{e(k.previous)}</td>"
        f"<td>{e(k.change)}</td><td>{e(k.target)}</td>"
        f"<td class='{e(k.status.replace(' ', '-'))}'>{e(k.status)}</td></tr>"
        for k in kpis
    )
    qrows = []
    for queue, row in sorted(cur.totals.items()):
        if queue == CENTRE or queue not in config.queues.queues:
            continue
        qd = config.queues.queues[queue]
        f = summarize_counters(row, target_s=qd.target_answer_s)
        qrows.append(
            f"<tr><td>{e(queue)}</td><td>{f['offered']}</td><td>{f['answered']}</td>"
            f"<td>{f['abandoned']}</td><td>{_ratio(f['service_level'])} "
            f"(goal {qd.service_level_goal * 100:.0f}/{qd.target_answer_s:g})</td>"
            f"<td>{_secs(f['asa_s'])}</td><td>{_ratio(f['abandon_rate'])}</td>"
            f"<td>{_secs(f['aht_s'])}</td></tr>"
        )
    imgs = "".join(
        f"<figure><img src='{e(name)}' alt='{e(alt)}'><figcaption>{e(alt)}</figcaption></figure>"
        for name, alt in charts
    )
    note_html = "".join(f"<li>{e(n)}</li>" for n in notes)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Hotline report {e(cur.month)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 960px; color: #1b2530; }}
table {{ border-collapse: collapse; width: 100%; margin: 1rem 0; }}
th, td {{ border-bottom: 1px solid #d7dee6; padding: .3rem .5rem; text-align: left; }}
th {{ background: #f1f4f7; }} .met {{ color: #1d7a46; font-weight: 600; }}
.not-met {{ color: #b3261e; font-weight: 600; }} .no-data {{ color: #8a96a3; }}
.notes {{ background: #fff7e0; padding: .5rem 1.5rem; border-radius: .4rem; }}
img {{ max-width: 100%; }} figure {{ margin: 1rem 0; }}
</style></head><body>
<h1>Hotline: monthly report {e(cur.month)}</h1>
<p>Compared with {e(prev.month)} and the service-quality plan. Generated
{e(generated_at.strftime("%Y-%m-%d %H:%M UTC"))}.</p>
{f"<ul class='notes'>{note_html}</ul>" if notes else ""}
<h2>Key figures</h2>
<table><tr><th>Measure</th><th>{e(cur.month)}</th><th>{e(prev.month)}</th><th>Change</th>
<th>Plan target</th><th>Status</th></tr>{table}</table>
<h2>Queues</h2>
<table><tr><th>Queue</th><th>Offered</th><th>Answered</th><th>Abandoned</th>
<th>Service level</th><th>ASA</th><th>Abandonment</th><th>AHT</th></tr>{"".join(qrows)}</table>
<h2>Charts</h2>{imgs or "<p>No call data to chart.</p>"}
<h2>Tables (CSV)</h2>
<ul><li><a href="kpis.csv">kpis.csv</a>: the key figures above</li>
<li><a href="daily_by_queue.csv">daily_by_queue.csv</a>: service level, ASA, abandonment,
offered, answered and handled by day and queue</li>
<li><a href="csat_distribution.csv">csat_distribution.csv</a></li>
<li><a href="complaints_and_cases.csv">complaints_and_cases.csv</a></li>
<li><a href="callbacks.csv">callbacks.csv</a>: callbacks created, made and reached by kind</li></ul>
<p><small>Definitions as in DESIGN.md. Call figures by UTC day from the 15-minute routing
counters (the same figures as /api/v1/stats); surveys, complaints, cases and callbacks by
the bank's calendar month. Complaints answered within 24 h: share of the month's complaints
whose first contact came within 24 h, among those contacted or overdue.</small></p>
</body></html>
"""
    (out / "index.html").write_text(page, encoding="utf-8")
    return out


@dataclass(frozen=True)
class ReportResult:
    directory: Path
    current: MonthData
    previous: MonthData


async def build_report(
    redis: aioredis.Redis,
    keys: Keys,
    config: HotlineConfig,
    users: SupervisorsConfig,
    month: str,
    out_dir: Path,
) -> ReportResult:
    datetime.strptime(month, "%Y-%m")  # ValueError on a bad month
    store = QueueStore(redis, keys, config.queues)
    await store.sync_clock()
    sup = SupervisorStats(QueueStats(store), redis, keys, users)
    zone = ZoneInfo(config.calling.bank_timezone)
    surveys = SurveyStore(redis, keys, config.calling.bank_timezone)
    cur = await collect_month(sup, surveys, month, zone)
    prev = await collect_month(sup, surveys, previous_month(month), zone)
    directory = render(out_dir, cur, prev, config, users.plan, datetime.now(UTC))
    return ReportResult(directory, cur, prev)


def summary_text(result: ReportResult) -> str:
    buf = io.StringIO()
    calls = summarize_counters(result.current.calls)
    buf.write(f"report written to {result.directory / 'index.html'}\n")
    buf.write(
        f"{result.current.month}: offered {calls['offered']}, answered {calls['answered']}, "
        f"abandoned {calls['abandoned']}, service level {_ratio(calls['service_level'])}, "
        f"complaints {result.current.complaints}, "
        f"surveys {result.current.surveys.get('answers', 0)}\n"
    )
    if result.current.missing_days:
        buf.write(f"days without call statistics: {len(result.current.missing_days)}\n")
    return buf.getvalue()


__all__ = ["MonthData", "ReportResult", "build_report", "collect_month", "render"]
