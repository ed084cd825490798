"""`hotline call`: place one emulated call against the service and show what happens.

The composition root wires it as a subcommand:

    sub = subparsers.add_parser("call", help="place one emulated call")
    emulator.cli.add_call_arguments(sub)
    ...
    return asyncio.run(emulator.cli.run_call(args))          # a running service
    # or, in-process: await emulator.cli.run_call(args, emulator=emu)

Without an emulator given, `run_call` makes one and serves its REST API on
--emulator-host/--emulator-port (default 127.0.0.1:8099) so the service's twilio client
(api.base_url pointed there) can redirect the call, e.g. after speech recognition.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TextIO

from aiohttp import web

from emulator.calls import Call
from emulator.emulator import CarrierEmulator
from emulator.parties import AgentPhone, CallerScript, Speak, parse_agent
from emulator.transcript import Step, Transcript

DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_AUTH_TOKEN = "demo-auth-token"  # the service's own default (config.settings)


def add_call_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `hotline call` options to `parser`."""
    parser.add_argument(
        "--url", default="http://127.0.0.1:8080/voice", help="the service's voice webhook"
    )
    parser.add_argument("--from", dest="from_", default="+15005550006", help="caller number")
    parser.add_argument("--to", default="+15005550001", help="the hotline number dialled")
    parser.add_argument(
        "--press",
        action="append",
        default=[],
        metavar="DIGITS",
        help="keys for the next <Gather> (repeat per menu; '' lets one time out)",
    )
    parser.add_argument(
        "--say",
        action="append",
        default=[],
        metavar="WAV",
        help="a WAV file to speak on the next voice menu (repeatable)",
    )
    parser.add_argument("--hangup-after", type=float, default=None, metavar="S")
    parser.add_argument("--patience", type=float, default=None, metavar="S",
                        help="hang up after this long in a queue")
    parser.add_argument("--json", action="store_true", help="print steps and outcome as JSON")
    parser.add_argument("--speedup", type=float, default=1.0, help="divide every wait by this")
    parser.add_argument("--fallback-url", default=None)
    parser.add_argument("--status-callback", default=None)
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="give up after this many real seconds")
    parser.add_argument("--account-sid", default=None,
                        help="default: $TWILIO_ACCOUNT_SID or a test SID")
    parser.add_argument("--auth-token", default=None,
                        help="default: $TWILIO_AUTH_TOKEN (signs the webhooks)")
    parser.add_argument(
        "--agent",
        action="append",
        default=[],
        metavar="SPEC",
        help="an agent phone: NUMBER or client:NAME[:ANSWER_AFTER_S[:HANDLE_TIME_S]]",
    )
    parser.add_argument(
        "--default-agent",
        default="3:30",
        metavar="ANSWER_AFTER_S:HANDLE_TIME_S",
        help="how any other dialled number answers ('none': it fails)",
    )
    parser.add_argument("--emulator-host", default="127.0.0.1")
    parser.add_argument("--emulator-port", type=int, default=8099,
                        help="serve the emulated REST API here (0: do not serve)")


def script_from_args(args: argparse.Namespace) -> CallerScript:
    return CallerScript(
        presses=tuple(p if p else None for p in args.press),
        stream_inputs=tuple(Speak(Path(p)) for p in args.say),
        hangup_after=args.hangup_after,
        patience=args.patience,
    )


def configure_agents(emu: CarrierEmulator, args: argparse.Namespace) -> None:
    """Register --agent phones and the --default-agent template."""
    for spec in args.agent:
        emu.register_agent(parse_agent(spec))
    if args.default_agent and args.default_agent != "none" and emu.default_agent is None:
        template = parse_agent("any:" + args.default_agent)
        emu.default_agent = AgentPhone(
            answer_after=template.answer_after, handle_time=template.handle_time
        )


def format_step(index: int, step: Step) -> list[str]:
    lines = [f"[{index}] {step.method} {step.node}  ({', '.join(step.verbs) or '-'})"]
    for heard in step.heard:
        if heard.kind in {"say", "system"}:
            lines.append(f"    hears ({heard.language or '?'}): {heard.text}")
        elif heard.kind == "play":
            lines.append(f"    hears audio {heard.url} ({heard.ms} ms)")
        elif heard.kind == "stream":
            lines.append(f"    hears {heard.ms} ms of streamed audio")
        else:
            lines.append(f"    hears {heard.kind} {heard.text}")
    for given in step.input:
        lines.append(f"    does: {given}")
    return lines


def format_outcome(tr: Transcript) -> list[str]:
    o = tr.outcome
    return [
        f"outcome: queued={o.queued} answered_by={o.answered_by} abandoned={o.abandoned} "
        f"hangup_reason={o.hangup_reason} duration_s={o.duration_s:g}",
        *[f"error {e['code']} ({e['level']}): {e['message']} {e['detail']}" for e in tr.errors],
    ]


def transcript_json(tr: Transcript) -> dict[str, object]:
    """The `--json` document: steps (node, verbs, heard, input) and the outcome."""
    data = tr.to_json()
    data["steps"] = [
        {"node": s["node"], "verbs": s["verbs"], "heard": s["heard"], "input": s["input"]}
        for s in data["steps"]
    ]
    return data


async def _follow(call: Call, out: TextIO) -> None:
    printed = 0
    while True:
        steps = call.transcript.steps
        done = call.finished
        ready = len(steps) if done else len(steps) - 1
        while printed < ready:
            printed += 1
            for line in format_step(printed, steps[printed - 1]):
                print(line, file=out, flush=True)
        if done:
            return
        await asyncio.sleep(0.05)


async def run_call(
    args: argparse.Namespace,
    *,
    emulator: CarrierEmulator | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Place one inbound call as `args` describe; print it; 0 if it finished cleanly."""
    owned = emulator is None
    emu = emulator or CarrierEmulator(
        args.account_sid or os.environ.get("TWILIO_ACCOUNT_SID") or DEFAULT_ACCOUNT_SID,
        args.auth_token or os.environ.get("TWILIO_AUTH_TOKEN") or DEFAULT_AUTH_TOKEN,
        speedup=args.speedup,
    )
    runner: web.AppRunner | None = None
    configure_agents(emu, args)
    try:
        if owned and args.emulator_port:
            try:
                runner = await emu.serve(args.emulator_host, args.emulator_port)
            except OSError as exc:
                print(f"emulator REST API not served: {exc}", file=sys.stderr)
        call = await emu.place_inbound_call(
            voice_url=args.url,
            from_=args.from_,
            to=args.to,
            script=script_from_args(args),
            fallback_url=args.fallback_url,
            status_callback=args.status_callback,
        )
        follower = None if args.json else asyncio.get_running_loop().create_task(
            _follow(call, out)
        )
        try:
            transcript = await call.wait_finished(args.timeout)
        except TimeoutError:
            call.hangup("timeout")
            transcript = await call.wait_finished(10)
        if follower is not None:
            await follower
        if args.json:
            print(json.dumps(transcript_json(transcript), indent=2, ensure_ascii=False), file=out)
        else:
            for line in format_outcome(transcript):
                print(line, file=out)
        bad = transcript.outcome.hangup_reason in {"application-error", "timeout"}
        return 1 if bad or emu.internal_errors else 0
    finally:
        if owned:
            await emu.close()
        if runner is not None:
            await runner.cleanup()
