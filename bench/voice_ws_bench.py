"""Voice menus through the real websocket path: accuracy, latency and CPU, end to end.

Run: REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/voice_ws_bench.py
     [--speedup 10] [--concurrency 4] [--cpu-calls 8]

The service runs as `hotline serve` in a child process (speech on: the Korean model, the
prompts pre-rendered by `hotline prompts build` into var/bench-prompts), with its Twilio
REST client pointed at the carrier emulator in this process. Every call dials /voice,
presses 3 (Korean) at the keypad language menu, then hears the voice menu `main` over a
Media Stream (the emulator signs the websocket upgrade as Twilio does) and says one
fixture.

1. Accuracy: each of the 48 fixtures (36 menu phrases, 12 out of grammar) is one call.
   The service logs each decision ("voice menu answered": outcome, turns, timings, no
   transcript); in-grammar fixtures are right (routed to their option on the first turn),
   re-prompted (not routed on the first turn; the caller says nothing more, so after the
   retries: the keypad menu) or wrongly routed; out-of-grammar ones are not routed or
   wrongly routed.
2. Latency from the end of speech to the REST redirect: vosk's endpoint (audio after the
   last word until the final result, in audio time, i.e. real time on a phone line) plus
   the wall time from the final result to the engine's step stored and the REST update
   answered.
3. CPU: the child's CPU time (utime + stime from /proc) over `--cpu-calls` calls that
   are routed on the first turn, all concurrent, against vosk alone in this process on
   the same inbound audio (the silence heard during the prompt, the turn gap, the phrase,
   up to vosk's first endpoint with words), as 16 kHz PCM already widened (vosk's own
   work) and as plain 8 kHz PCM. The child's idle CPU over the same wall time is
   subtracted. The pipeline's CPU includes the webhooks, Redis, TwiML and REST of the
   whole call, not only recognition: it is the cost of a voice-menu call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import emulator.streams as emulator_streams  # noqa: E402
from emulator import CallerScript, CarrierEmulator, Speak  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "audio"
PROMPT_DIR = ROOT / "var" / "bench-prompts"
ACCOUNT_SID = "AC" + "8" * 32
AUTH_TOKEN = "voice-bench-token-0123456789"
SLUG_KEY = {
    "balance": "1",
    "balance-inquiry": "1",
    "lost-card": "2",
    "hours": "3",
    "complaint": "4",
    "agent": "0",
}
TURN_GAP_S = emulator_streams.TURN_GAP_S
PYTHON = sys.executable
LOG_FILE = ROOT / "var" / "voice_ws_bench.log"  # the service's log of the last run


def expected_key(path: Path) -> str | None:
    m = re.match(r"ko_(.+)_ko(-\w+)?_\d+\.wav$", path.name)
    return SLUG_KEY.get(m.group(1)) if m else None


def fixtures() -> list[Path]:
    return sorted(p for p in FIXTURES.glob("ko_*.wav") if "silence" not in p.name)


def sid_key(sid: str) -> str:
    """The logs mask runs of 7+ digits (phone numbers), and so parts of some SIDs: compare
    SIDs masked the same way."""
    from config.logs import scrub

    return scrub(sid)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class Child:
    """`hotline serve` in a child process; its JSON log lines collected by a thread."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "hotline", "serve", "--port", str(port), "--host", "127.0.0.1"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.decisions: dict[str, dict[str, Any]] = {}
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and data.get("msg") == "voice menu answered":
                sid = str(data.get("call_sid"))
                self.decisions.setdefault(sid, data)  # the first decision of a call

    def stop(self) -> None:
        LOG_FILE.write_text("".join(self.lines))
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def wait_ready(url: str, child: Child, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if child.proc.poll() is not None:
                raise RuntimeError("service exited:\n" + "".join(child.lines[-20:]))
            try:
                async with http.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("service did not start")


async def run_calls(
    emu: CarrierEmulator,
    voice_url: str,
    paths: list[Path],
    concurrency: int,
    child: Child,
) -> dict[str, Path]:
    """One call per fixture, `concurrency` at a time; call sid -> fixture."""
    sem = asyncio.Semaphore(concurrency)
    by_sid: dict[str, Path] = {}

    async def one(i: int, path: Path) -> None:
        async with sem:
            script = CallerScript(
                presses=("3",),
                stream_inputs=(Speak(path),),
                patience=1,
                stream_idle_hangup=600,
            )
            call = await emu.place_inbound_call(
                voice_url=voice_url, from_=f"+8210{i:08d}", to="+8215880000", script=script
            )
            by_sid[call.sid] = path
            await call.wait_finished(300)
            for _ in range(50):  # the decision's log line may trail the call's end
                if sid_key(call.sid) in child.decisions:
                    break
                await asyncio.sleep(0.05)

    await asyncio.gather(*(one(i, p) for i, p in enumerate(paths)))
    return by_sid


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def accuracy_report(child: Child, by_sid: dict[str, Path]) -> list[Path]:
    rows: dict[str, int] = {
        "right": 0,
        "re-prompted": 0,
        "wrong": 0,
        "oog not routed": 0,
        "oog wrong": 0,
        "no decision": 0,
    }
    first_turn: list[Path] = []
    wrong: list[str] = []
    for sid, path in sorted(by_sid.items(), key=lambda kv: kv[1].name):
        want = expected_key(path)
        d = child.decisions.get(sid_key(sid))
        if d is None:
            rows["no decision"] += 1
            continue
        outcome = str(d["outcome"])
        routed = outcome.removeprefix("option:") if outcome.startswith("option:") else None
        if want is None:
            rows["oog wrong" if routed else "oog not routed"] += 1
        elif routed == want and int(d["turns"]) == 1:
            rows["right"] += 1
            first_turn.append(path)
        elif routed is None or routed == want:
            rows["re-prompted"] += 1
        else:
            rows["wrong"] += 1
            wrong.append(f"{path.name} -> {outcome}")
    in_grammar = sum(1 for p in by_sid.values() if expected_key(p))
    print(
        f"\n## Accuracy end to end ({in_grammar} menu phrases, "
        f"{len(by_sid) - in_grammar} out of grammar)"
    )
    for name, count in rows.items():
        print(f"- {name}: {count}")
    for line in wrong:
        print(f"  wrongly routed: {line}")
    return first_turn


def latency_report(child: Child, sids: list[str]) -> None:
    ds = [child.decisions[sid_key(s)] for s in sids if sid_key(s) in child.decisions]
    ds = [d for d in ds if str(d["outcome"]).startswith("option:") and d["endpoint_ms"]]
    endpoint = [float(d["endpoint_ms"]) for d in ds]
    decide = [float(d["decide_ms"]) for d in ds]
    rest = [float(d["rest_ms"]) for d in ds]
    total = [e + d + r for e, d, r in zip(endpoint, decide, rest, strict=True)]
    print(f"\n## End of speech -> REST redirect ({len(ds)} spoken decisions)")
    for name, values in (
        ("vosk endpoint (audio ms)", endpoint),
        ("final result -> step stored (ms)", decide),
        ("REST update (ms)", rest),
        ("total (ms)", total),
    ):
        print(
            f"- {name}: p50 {pct(values, 0.5):.0f}, p95 {pct(values, 0.95):.0f}, "
            f"max {max(values, default=float('nan')):.0f}"
        )


def inbound_audio(path: Path, prompt_ms: int) -> bytes:
    """What the emulator sends the service: silence while the prompt plays and the turn
    gap, then the phrase, then silence."""
    from speech import mulaw

    silence = bytes([mulaw.MULAW_SILENCE])
    lead = silence * (mulaw.SAMPLE_RATE * (prompt_ms + int(TURN_GAP_S * 1000)) // 1000)
    return lead + mulaw.read_ulaw_wav(path) + silence * (2 * mulaw.SAMPLE_RATE)


def vosk_alone(audios: list[bytes], *, widened: bool, gate: bool = False) -> float:
    """vosk alone on the inbound audio; with `gate`, only on the part a gated session
    decodes (from 300 ms before the start of speech), widened."""
    import vosk

    from config.loader import load_config
    from speech.frontend import TelephoneFrontEnd, gated
    from speech.mulaw import ulaw_to_pcm16
    from speech.recognizer import ModelRegistry, SessionConfig

    registry = ModelRegistry.from_env({})
    node = load_config(ROOT / "config").flow.nodes["main"]
    grammar = registry.grammar({o.key: list(o.phrases.get("ko", ())) for o in node.options}, "ko")
    loaded = registry.get("ko")
    assert grammar is not None and loaded is not None
    if gate:
        audios = [gated(a, SessionConfig().preroll_ms) for a in audios]
    if widened or gate:
        rate, pcms = 16000.0, [TelephoneFrontEnd().process(a) for a in audios]
    else:
        rate, pcms = 8000.0, [ulaw_to_pcm16(a) for a in audios]
    step = int(rate) * 2 // 10
    start = time.process_time()
    for pcm in pcms:
        rec = vosk.KaldiRecognizer(loaded.model, rate, grammar.to_vosk_json())
        rec.SetWords(True)
        for i in range(0, len(pcm), step):
            if rec.AcceptWaveform(pcm[i : i + step]) and json.loads(rec.Result()).get("text"):
                break
        else:
            rec.FinalResult()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speedup", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--cpu-calls", type=int, default=8)
    parser.add_argument("--limit", type=int, default=0, help="only the first N fixtures")
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        sys.exit("set REDIS_URL (a real Redis; the bench uses its own key prefix)")
    env = {**os.environ, "HOTLINE_PROMPT_DIR": str(PROMPT_DIR)}
    print("pre-rendering prompts (first run only) ...", file=sys.stderr)
    subprocess.run(
        [PYTHON, "-m", "hotline", "prompts", "build"],
        cwd=ROOT,
        env=env,
        check=True,
        stderr=subprocess.DEVNULL,
    )
    asyncio.run(run(args, env, redis_url))


async def run(args: argparse.Namespace, env: dict[str, str], redis_url: str) -> None:
    emu = CarrierEmulator(ACCOUNT_SID, AUTH_TOKEN, speedup=args.speedup)
    runner = await emu.serve("127.0.0.1", 0)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env.update(
        PUBLIC_URL=base,
        REDIS_URL=redis_url,
        HOTLINE_KEY_PREFIX=f"bench-voice:{uuid.uuid4().hex[:8]}:",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_API_BASE=emu.public_url or "",
        HOTLINE_JSON_LOGS="true",
        HOTLINE_ASR_NO_INPUT_MS="3000",
        HOTLINE_ASR_MAX_SESSIONS=str(max(args.cpu_calls, args.concurrency) + 2),
    )
    child = Child(env, port)
    try:
        await wait_ready(base, child)
        await asyncio.sleep(1.0)
        from speech.mulaw import SAMPLE_RATE, read_ulaw_wav
        from speech.prompts import prompt_key
        from speech.settings import SpeechSettings

        main_ko = (
            __import__("config.loader", fromlist=["load_config"])
            .load_config(ROOT / "config")
            .flow.nodes["main"]
            .prompt["ko"]
        )
        key = prompt_key(main_ko, "ko", SpeechSettings.from_env(env).voices["ko"])
        prompt_ms = len(read_ulaw_wav(PROMPT_DIR / f"{key}.wav")) * 1000 // SAMPLE_RATE
        print(
            f"voice menu prompt: {prompt_ms} ms; emulator speedup {args.speedup}x; "
            f"{os.cpu_count()} CPUs"
        )

        t0 = time.monotonic()
        paths = fixtures()[: args.limit] if args.limit else fixtures()
        by_sid = await run_calls(emu, f"{base}/voice", paths, args.concurrency, child)
        print(f"(accuracy phase: {time.monotonic() - t0:.1f} s wall)")
        first_turn = accuracy_report(child, by_sid)
        latency_report(child, list(by_sid))

        if first_turn:
            batch = [first_turn[i % len(first_turn)] for i in range(args.cpu_calls)]
            idle0, w0 = cpu_seconds(child.proc.pid), time.monotonic()
            await asyncio.sleep(3.0)
            idle_rate = (cpu_seconds(child.proc.pid) - idle0) / (time.monotonic() - w0)
            c0, w0 = cpu_seconds(child.proc.pid), time.monotonic()
            at_decisions: list[float] = []
            calls_task = asyncio.ensure_future(
                run_calls(emu, f"{base}/voice", batch, args.cpu_calls, child)
            )
            seen = len(child.decisions)
            while not calls_task.done():
                if not at_decisions and len(child.decisions) >= seen + len(batch):
                    at_decisions = [cpu_seconds(child.proc.pid), time.monotonic()]
                await asyncio.sleep(0.01)
            by_sid2 = calls_task.result()
            whole = cpu_seconds(child.proc.pid) - c0 - idle_rate * (time.monotonic() - w0)
            if not at_decisions:
                at_decisions = [cpu_seconds(child.proc.pid), time.monotonic()]
            wall = at_decisions[1] - w0
            used = at_decisions[0] - c0 - idle_rate * wall
            routed = sum(
                1
                for s in by_sid2
                if str(child.decisions.get(sid_key(s), {}).get("outcome", "")).startswith("option:")
            )
            turns = sum(int(child.decisions.get(sid_key(s), {}).get("turns", 0)) for s in by_sid2)
            audios = [inbound_audio(p, prompt_ms) for p in batch]
            direct16 = vosk_alone(audios, widened=True)
            direct8 = vosk_alone(audios, widened=False)
            direct_gated = vosk_alone(audios, widened=True, gate=True)
            audio_s = sum(len(a) for a in audios) / SAMPLE_RATE
            print(
                f"\n## CPU ({args.cpu_calls} concurrent calls, {routed} routed by voice, "
                f"{turns} turns (vosk alone decodes one per call), "
                f"{audio_s:.0f} s of inbound audio, {wall:.1f} s wall)"
            )
            print(
                f"- service process up to the last voice decision (idle removed): "
                f"{used:.2f} s = {used / args.cpu_calls * 1000:.0f} ms per call "
                f"(whole calls, to hang-up: {whole / args.cpu_calls * 1000:.0f} ms)"
            )
            print(
                f"- vosk alone, whole audio, widened 16 kHz: {direct16:.2f} s -> pipeline/vosk "
                f"{used / direct16:.2f}x"
            )
            print(
                f"- vosk alone, whole audio, plain 8 kHz: {direct8:.2f} s -> pipeline/vosk "
                f"{used / direct8:.2f}x"
            )
            print(
                f"- vosk alone, same gated audio (from 300 ms before speech), widened: "
                f"{direct_gated:.2f} s -> pipeline/vosk {used / direct_gated:.2f}x "
                f"(the service's overhead over the decoding it does)"
            )
            print(f"- calls in real time per core through the websocket path: {audio_s / used:.0f}")
    finally:
        child.stop()
        await emu.close()
        await runner.cleanup()


if __name__ == "__main__":
    main()
