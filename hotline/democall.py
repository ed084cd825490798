"""`hotline call`: one emulated call, against a running service or one started in-process."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
from pathlib import Path

from aiohttp import web

from config.loader import HotlineConfig
from config.settings import Settings
from emulator import CarrierEmulator
from emulator.cli import add_call_arguments, run_call
from ivr.accounts import FileAccountBackend


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_call_arguments(parser)
    parser.add_argument(
        "--lang", default=None, help="choose this language at the first menu (zh, en, ko)"
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="start the service here too (embedded Redis unless REDIS_URL, demo configuration)",
    )


def language_keys(config: HotlineConfig) -> dict[str, str]:
    """Which key picks which language at the start menu."""
    start = config.flow.nodes[config.flow.start]
    return {o.language: o.key for o in start.options if o.language}


def apply_language(args: argparse.Namespace, config: HotlineConfig) -> None:
    if args.lang is None:
        return
    keys = language_keys(config)
    if args.lang not in keys:
        raise SystemExit(f"--lang {args.lang}: the start menu offers {', '.join(sorted(keys))}")
    args.press = [keys[args.lang], *args.press]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def call(args: argparse.Namespace, settings: Settings, config: HotlineConfig) -> int:
    apply_language(args, config)
    if not args.in_process:
        return await run_call(args)
    from hotline.app import create_app

    emu = CarrierEmulator(settings.account_sid, settings.auth_token, speedup=args.speedup)
    emu_runner = await emu.serve("127.0.0.1", 0)
    port = _free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="hotline-call-"))
    env = dict(os.environ)
    env.update(
        {
            "PORT": str(port),
            "PUBLIC_URL": f"http://127.0.0.1:{port}",
            "TWILIO_API_BASE": emu.public_url or "",
            "HOTLINE_DATA": str(data_dir),
            "TWILIO_ACCOUNT_SID": settings.account_sid,
            "TWILIO_AUTH_TOKEN": settings.auth_token,
        }
    )
    local = Settings.from_env(env)
    accounts = FileAccountBackend.load(local.config_dir / "accounts.yaml")
    runner = web.AppRunner(create_app(local, config, accounts), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    args.url = f"{local.base_url}/voice"
    args.account_sid, args.auth_token = local.account_sid, local.auth_token
    try:
        return await run_call(args, emulator=emu, out=sys.stdout)
    finally:
        await emu.close()
        await emu_runner.cleanup()
        await runner.cleanup()
