"""Turn bench/webhook_bench.py's JSON into docs/BENCHMARKS.md (with bench/notes.md, the
hand-written part: what the profile showed, what changed, why a target is missed).

    .venv/bin/python bench/report.py results.json docs/BENCHMARKS.md

With `calls.json` (bench/calls_capacity.py) beside results.json, the calls section too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
THROUGHPUT_TARGET = 0.35
P99_TARGET_MS = 10.0
SCALE_TARGET = 1.7


def _ok(met: bool) -> str:
    return "met" if met else "**NOT met**"


def _ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def webhook_table(one: dict[str, Any]) -> list[str]:
    bare = one["bare"]
    lines = [
        "| endpoint (one process) | req/s | ratio to bare | target | p50 ms | p99 ms | "
        "server CPU us/request | CPU-based ratio to bare | worker RSS MB | errors |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
        f"| bare handler (baseline: fixed TwiML, no work) | {bare['rps']:.0f} | 1.00 | | "
        f"{_ms(bare['p50_us'])} | {_ms(bare['p99_us'])} | {bare['cpu_us_per_request']:.0f} | "
        f"1.00 | {bare.get('worker_rss_mb', '')} | {bare['errors']} |",
    ]
    for name, label in (("voice", "POST /voice (new call)"), ("ivr", "POST /ivr/{node} (step)")):
        r = one[name]
        ratio = r["rps"] / bare["rps"]
        cpu, cpu_bare = r["cpu_us_per_request"], bare["cpu_us_per_request"]
        lines.append(
            f"| {label} | {r['rps']:.0f} | {ratio:.3f} | >= {THROUGHPUT_TARGET}: "
            f"{_ok(ratio >= THROUGHPUT_TARGET)} | {_ms(r['p50_us'])} | {_ms(r['p99_us'])} | "
            f"{cpu:.0f} | {cpu_bare / cpu:.3f} | {r.get('worker_rss_mb', '')} | "
            f"{r['errors']} |"
        )
    lines += [
        "",
        "The CPU-based ratio (bare CPU per request / the endpoint's) is what the throughput "
        "ratio would be with a core each and nothing else running; it moves much less than "
        "req/s when other work shares the machine.",
    ]
    return lines


def rate_table(rate: dict[str, Any]) -> list[str]:
    lines = [
        "| endpoint (one process) | constant rate req/s | achieved | p50 ms | p99 ms | max ms | "
        "bare p99 ms at the same rate | p99 ratio to bare | target p99 < 10 ms | bad/errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, label in (("voice", "POST /voice"), ("ivr", "POST /ivr/{node}")):
        r, b = rate[name], rate[f"bare_{name}"]
        ratio = r["p99_ms"] / b["p99_ms"] if b["p99_ms"] else float("nan")
        bad = r["bad_status"] + r["bad_body"] + r["errors"]
        lines.append(
            f"| {label} | {r['rate']:.0f} | {r['achieved_rps']:.0f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['max_ms']:.1f} | {b['p99_ms']:.2f} | {ratio:.1f} | "
            f"{_ok(r['p99_ms'] < P99_TARGET_MS)} | {bad} |"
        )
    return lines


def scale_table(one: dict[str, Any], two: dict[str, Any]) -> list[str]:
    lines = [
        "| endpoint | 1 worker req/s (baseline) | 2 workers req/s | ratio | target >= 1.7 | "
        "share of the bare handler's own 2-vs-1 ratio | 2-worker p99 ms |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    bare_ratio = two["bare"]["rps"] / one["bare"]["rps"]
    for name, label in (
        ("bare", "bare handler"),
        ("voice", "POST /voice"),
        ("ivr", "POST /ivr/{node}"),
    ):
        a, b = one[name], two[name]
        ratio = b["rps"] / a["rps"]
        target = "(context)" if name == "bare" else _ok(ratio >= SCALE_TARGET)
        lines.append(
            f"| {label} | {a['rps']:.0f} | {b['rps']:.0f} | {ratio:.2f} | {target} | "
            f"{ratio / bare_ratio:.2f} | {_ms(b['p99_us'])} |"
        )
    lines += [
        "",
        "wrk (2 threads), Redis and both workers share the machine's 2 cores, so two workers "
        "never get two whole cores; the bare handler's own 2-vs-1 ratio in the same run is the "
        "ceiling this machine allows, and the last column is the service's ratio as a share of it.",
    ]
    return lines


QUEUE_ENDPOINTS = (
    ("hold", "POST /queue/hold"),
    ("stats_gzip", "GET /api/v1/stats, gzip"),
    ("stats", "GET /api/v1/stats, no compression"),
)


def queue_table(q: dict[str, Any], bare: dict[str, Any], rate: dict[str, Any]) -> list[str]:
    lines = [
        f"One process; {q['queues']} queues, {q['agents']} agents logged in (not ready), "
        f"{q['waiting']} callers waiting, spread over the queues (bench/webhook_bench.py "
        "generates the configuration from the demo one). The hold loop is Twilio's `waitUrl` "
        "(`POST /queue/hold`: position, estimated wait, callback offer); the statistics "
        "endpoint is `GET /api/v1/stats` (bearer token), measured as browsers ask for it "
        "(`Accept-Encoding: gzip`: the held snapshot's body compressed once a second) and "
        "without compression. Baseline: the same run's bare handler.",
        "",
        "| endpoint | wrk connections | req/s | ratio to bare | p50 ms | p99 ms | server CPU "
        "us/request | Redis CPU us/request | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, label in QUEUE_ENDPOINTS:
        if name not in q:
            continue  # a run from before the gzip measurement
        r = q[name]
        lines.append(
            f"| {label} | {r['connections']} | {r['rps']:.1f} | {r['rps'] / bare['rps']:.4f} | "
            f"{_ms(r['p50_us'])} | {_ms(r['p99_us'])} | {r['cpu_us_per_request']:.0f} | "
            f"{r.get('redis_cpu_us_per_request', 0):.0f} | {r['errors']} |"
        )
    lines += [
        "",
        "| endpoint, constant rate at half its max | rate req/s | p50 ms | p99 ms | "
        "bare p99 ms (at the IVR rate) | target p99 < 10 ms | bad/errors |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    bare_p99 = rate["bare_ivr"]["p99_ms"]
    for name, label in QUEUE_ENDPOINTS:
        if f"rate_{name}" not in q:
            continue
        r = q[f"rate_{name}"]
        bad = r["bad_status"] + r["bad_body"] + r["errors"]
        lines.append(
            f"| {label} | {r['rate']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{bare_p99:.2f} | {_ok(r['p99_ms'] < P99_TARGET_MS)} | {bad} |"
        )
    lines.append("")
    return lines


def profile_table(profile: dict[str, Any]) -> list[str]:
    lines = [
        f"pyinstrument {profile.get('tool_version', '')} sampled {profile['samples_s']} s of the "
        "server's time (both phases, /voice then /ivr). Share of all samples:",
        "",
        "| function (cumulative: itself and what it calls) | cumulative % |",
        "|---|---:|",
    ]
    for row in profile["cumulative"]:
        lines.append(f"| `{row['function']}` | {row['cum_pct']:.1f} |")
    lines += ["", "| function (self time) | self % |", "|---|---:|"]
    for row in profile["self"][:15]:
        lines.append(f"| `{row['function']}` | {row['self_pct']:.1f} |")
    return lines


def calls_section(calls: dict[str, Any]) -> list[str]:
    """bench/calls_capacity.py's result: the headline and the step at capacity."""
    req, best = calls["required"], calls["at_capacity"]
    when = f"run finished {calls['run_finished']}"
    if "run_started" in calls:
        when = f"run {calls['run_started']} to {calls['run_finished']}"
    floor = ">= " if calls["stopped"] == "all steps passed" else ""  # no step failed
    lines = [
        "## Calls: simultaneous calls through the carrier emulator, one process",
        "",
        f"bench/calls_capacity.py, {when} (UTC), "
        f"{calls['machine']['cores']} cores: {calls['service']}, a private redis-server, the "
        "emulator in real time (speed-up 1) on the same machine; steps of simultaneous calls "
        f"({calls['mix']['menus']:.0%} in the keypad menus, {calls['mix']['waiting']:.0%} "
        f"waiting in the hold loop, {calls['mix']['talking']:.0%} talking to emulated agents). "
        f"A step passes with no webhook over {calls['limit_ms']:g} ms and no error. Baseline: "
        f"the busiest hour's simultaneous calls by Little's law ({req['arrival_per_s']} "
        f"calls/s x (170 s AHT + 45 s menus + ASA) = {req['total']:.0f}). "
        "Every step: docs/BENCHMARKS_CALLS.md.",
        "",
        "| figure | value | ratio to the busiest hour's need |",
        "|---|---:|---:|",
        f"| simultaneous calls carried (largest passing step) | {floor}{calls['capacity_calls']} "
        f"| {floor}{calls['ratio_to_required']:.2f} |",
    ]
    if best:
        lines += [
            f"| webhooks at that step: count, p50 / p99 / max ms | {best['webhooks']}, "
            f"{best['p50_ms']} / {best['p99_ms']} / {best['max_ms']} | |",
            f"| service RSS at that step (MB); per call (KB) | {best['service_rss_mb']}; "
            f"{best['rss_kb_per_call']} | |",
            f"| Redis used_memory at that step (MB); per call (KB) | {best['redis_used_mb']}; "
            f"{best['redis_kb_per_call']} | |",
        ]
    lines += ["", f"Stopped: {calls['stopped']}."]
    if best:
        lines[-1] += (
            " The latencies are the emulator's view and include its own event-loop delay "
            f"(at the passing step: p99 {best['loop_lag_p99_ms']} ms, max "
            f"{best['loop_lag_max_ms']} ms), since it shares the 2 cores with the service and "
            "Redis; a stall of the emulator's loop adds to every webhook in flight, so the "
            "figure is conservative for the service alone (not separated in this run)."
        )
    return lines


def calls_headline_from_doc() -> list[str]:
    """Without this run's calls.json, the headline of the last `make bench-calls`, as its
    own document (docs/BENCHMARKS_CALLS.md) holds it, dated there."""
    doc = ROOT / "docs" / "BENCHMARKS_CALLS.md"
    if not doc.exists():
        return ["> Calls: not measured yet (`make bench-calls`)."]
    text = doc.read_text(encoding="utf-8")
    start = text.find("## Calls")
    if start < 0:
        return ["> Calls: see docs/BENCHMARKS_CALLS.md."]
    end = text.find("\n## ", start + 1)
    end = text.find("\n\nBefore any call", start) if end < 0 else end
    section = text[start : end if end > 0 else len(text)].rstrip()
    return [
        section,
        "",
        "(Copied from docs/BENCHMARKS_CALLS.md: `make bench-calls` was not run with this "
        "`make bench`; its date is in the text above.)",
    ]


def render(results: dict[str, Any], calls: dict[str, Any] | None = None) -> str:
    m = results["machine"]
    out = [
        "# Benchmarks",
        "",
        "Written by `make bench` (bench/webhook_bench.py, then bench/report.py); do not edit by "
        "hand: the narrative parts live in bench/notes.md. Every figure is shown with its ratio "
        "to a baseline measured in the same run on the same machine.",
        "",
        f"- Run: {results['started']} to {results['finished']} (UTC)",
        f"- Machine: {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}, Python {m['python']}; "
        f"load average at start {', '.join(f'{x:.2f}' for x in m['loadavg_at_start'])} "
        "(other work on the machine shows up as noise; compare ratios, not absolutes)",
        f"- Load generator: {m['wrk']}, {results['wrk']['threads']} threads, "
        f"{results['wrk']['connections']} connections, {results['wrk']['duration_s']:g} s per run, "
        "keep-alive, pre-signed requests with a fresh CallSid each (bench/wrk_pool.lua); "
        "constant-rate runs with "
        + (
            "bench/rategen.c (C, epoll; "
            if results.get("rate_loadgen") == "rategen.c"
            else "bench/loadgen.py (Python; "
        )
        + "wrk2's model: latency from the scheduled send time)",
        f"- Redis: a private {results['redis']} started by the benchmark (AOF everysec)",
        "- Servers: `hotline serve --workers N` and the bare handler under the same supervisor "
        "(bench/bare_server.py), JSON logs on, everything on loopback; wrk, Redis and the "
        "servers share the cores",
        "",
        "## Webhooks: maximum throughput, one process",
        "",
        *webhook_table(results["one"]),
        "",
        "## Webhooks: latency at half the maximum rate (constant rate), one process",
        "",
        *rate_table(results["rate"]),
        "",
    ]
    if "two" in results:
        out += [
            "## Scale-out: `hotline serve --workers 2` against `--workers 1`",
            "",
            *scale_table(results["one"], results["two"]),
            "",
        ]
    out += ["## Queue hold loop and statistics endpoint (50 queues, 1,000 agents)", ""]
    if "queue" in results:
        out += queue_table(results["queue"], results["one"]["bare"], results["rate"])
    else:
        out += [
            "> **Arrives with the queue integration**: not measured in this run (`--skip-queue`).",
            "",
        ]
    if calls is not None:
        out += [*calls_section(calls), ""]
    else:
        out += [*calls_headline_from_doc(), ""]
    if "profile" in results:
        out += ["## Profile of this run", "", *profile_table(results["profile"]), ""]
    notes = ROOT / "bench" / "notes.md"
    if notes.exists():
        out += [notes.read_text(encoding="utf-8").rstrip(), ""]
    return "\n".join(out)


def main() -> int:
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    results = json.loads(source.read_text())
    calls_json = source.parent / "calls.json"  # bench/calls_capacity.py (`make bench-calls`)
    calls = json.loads(calls_json.read_text()) if calls_json.exists() else None
    target.write_text(render(results, calls), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
