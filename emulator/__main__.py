"""Standalone emulator: `python -m emulator --port 8099 [--agent +15550100:2:120]...`

Serves Twilio's REST paths for calls and recordings, plus a small control API:
POST /_emulator/calls (JSON: voice_url, from, to, presses, say, hangup_after, patience)
places an inbound call; GET /_emulator/calls/{sid} returns its transcript;
GET /_emulator/errors the debugger log.
"""

from __future__ import annotations

import argparse
import os

from aiohttp import web

from emulator.emulator import CarrierEmulator
from emulator.parties import parse_agent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument(
        "--account-sid", default=os.environ.get("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    )
    parser.add_argument(
        "--auth-token", default=os.environ.get("TWILIO_AUTH_TOKEN", "demo-auth-token")
    )
    parser.add_argument("--speedup", type=float, default=1.0)
    parser.add_argument("--webhook-timeout", type=float, default=15.0)
    parser.add_argument("--agent", action="append", default=[], help=parse_agent.__doc__)
    parser.add_argument(
        "--default-agent",
        default="none",
        metavar="ANSWER_AFTER_S:HANDLE_TIME_S",
        help="how any other dialled number answers (default: 'none', the dial fails)",
    )
    args = parser.parse_args(argv)
    emu = CarrierEmulator(
        args.account_sid,
        args.auth_token,
        speedup=args.speedup,
        webhook_timeout=args.webhook_timeout,
        public_url=f"http://{args.host}:{args.port}",
    )
    for spec in args.agent:
        emu.register_agent(parse_agent(spec))
    if args.default_agent != "none":
        emu.default_agent = parse_agent("any:" + args.default_agent)
    app = emu.rest_app()

    async def close_emulator(_: web.Application) -> None:
        await emu.close()

    app.on_cleanup.append(close_emulator)
    web.run_app(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
