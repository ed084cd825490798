"""The `hotline` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from config.errors import ConfigError
from config.loader import HotlineConfig, load_config
from config.logs import setup_logging
from config.settings import Settings, SettingsError
from ivr.accounts import FileAccountBackend
from speech.settings import SpeechSettingsError

if TYPE_CHECKING:
    from ivr.voice import SpeechSetup

log = logging.getLogger("hotline.cli")


def _load(settings: Settings) -> tuple[HotlineConfig, FileAccountBackend]:
    config = load_config(settings.config_dir)
    accounts = FileAccountBackend.load(settings.config_dir / "accounts.yaml")
    return config, accounts


def _settings(**overrides: str) -> Settings:
    env = dict(os.environ)
    env.update(overrides)
    return Settings.from_env(env)


def cmd_serve(args: argparse.Namespace) -> int:
    from hotline.app import create_app

    settings = _settings(**({"PORT": str(args.port)} if args.port else {}))
    setup_logging(json_lines=settings.json_logs)
    config, accounts = _load(settings)
    workers: int | None = args.workers
    log.info(
        "hotline listening",
        extra={
            "port": settings.port,
            "public_url": settings.base_url,
            "redis": "external" if settings.redis_url else "embedded",
            "workers": workers or 1,
        },
    )
    print(
        f"Hotline is answering on http://{args.host}:{settings.port} "
        f"(Twilio webhook: {settings.base_url}/voice).\n"
        "Place a test call from another terminal:\n"
        f"  .venv/bin/hotline call --url {settings.base_url}/voice --lang en --press 3 --press 9",
        file=sys.stderr,
        flush=True,
    )
    if workers is not None:
        from hotline.workers import serve

        return serve(settings, workers=workers, host=args.host)
    app = create_app(settings, config, accounts, speech=_speech_setup())
    from hotline.workers import tune_gc_after_startup

    tune_gc_after_startup(app)
    web.run_app(app, host=args.host, port=settings.port, print=None, access_log=None)
    return 0


def _speech_setup() -> SpeechSetup | None:
    """Speech settings from the environment, parsed once here; HOTLINE_SPEECH=off: keypad
    menus and <Say> only (no model loaded, nothing rendered)."""
    from ivr.voice import SpeechSetup
    from speech.settings import SpeechSettings

    if os.environ.get("HOTLINE_SPEECH", "on").strip().lower() in {"off", "0", "false", "no"}:
        return None
    return SpeechSetup(settings=SpeechSettings.from_env())


def cmd_prompts_build(args: argparse.Namespace) -> int:
    """Render every prompt that is missing (unchanged prompts are kept), with a progress bar."""
    import asyncio

    from ivr.prompt_catalog import prompt_items
    from speech.prompts import PromptCache, progress_bar
    from speech.settings import SpeechSettings

    settings = _settings()
    setup_logging(logging.WARNING, json_lines=settings.json_logs)
    config = load_config(settings.config_dir)
    speech = SpeechSettings.from_env()
    directory = Path(args.dir) if args.dir else speech.prompt_dir
    cache = PromptCache(directory, speech.voices)
    if not cache.available:
        print("espeak-ng is not installed: nothing rendered (callers hear <Say>)", file=sys.stderr)
        return 1
    items = prompt_items(config.flow, config.surveys)
    report = asyncio.run(cache.render_missing(items, progress=progress_bar(sys.stderr)))
    print(
        f"{directory}: {len(report.rendered)} rendered, {len(report.cached)} already there, "
        f"{len(report.failed)} failed",
        file=sys.stderr,
    )
    return 1 if report.failed else 0


def _worker_count(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of processes, got {raw!r}") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"{value} is outside 1..64")
    return value


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = _settings(**({"HOTLINE_CONFIG": args.dir} if args.dir else {}))
    _load(settings)
    from config.users import load_users

    load_users(settings.config_dir / "users.yaml")  # supervisor sign-in (optional file)
    directory = settings.config_dir
    print(f"{directory}: configuration is valid")
    return 0


def cmd_call(args: argparse.Namespace) -> int:
    import asyncio

    from hotline.democall import call

    settings = _settings()
    setup_logging(logging.WARNING, json_lines=settings.json_logs)
    config = load_config(settings.config_dir)
    return asyncio.run(call(args, settings, config))


def cmd_simulate(args: argparse.Namespace) -> int:
    from hotline.simulate import cmd_simulate as simulate

    settings = _settings()
    setup_logging(logging.WARNING, json_lines=settings.json_logs)
    return simulate(args, settings.redis_url, settings.config_dir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline", description="Bank hotline IVR and contact centre"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the webhook service")
    serve.add_argument("--port", type=int, default=None, help="port (default $PORT or 8080)")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument(
        "--workers",
        type=_worker_count,
        default=None,
        help="N supervised processes sharing the port (SO_REUSEPORT); default: one, in-process",
    )
    serve.set_defaults(func=cmd_serve)
    check = sub.add_parser("check-config", help="validate the configuration directory and exit")
    check.add_argument("--dir", default=None)
    check.set_defaults(func=cmd_check_config)
    prompts = sub.add_parser("prompts", help="pre-rendered prompts (text-to-speech)")
    prompts_sub = prompts.add_subparsers(dest="prompts_command", required=True)
    build = prompts_sub.add_parser(
        "build", help="render every missing prompt of every menu, message and survey, and exit"
    )
    build.add_argument("--dir", default=None, help="default: $HOTLINE_PROMPT_DIR or var/prompts")
    build.set_defaults(func=cmd_prompts_build)
    from hotline.democall import add_arguments

    place = sub.add_parser("call", help="place one emulated call and show what the caller hears")
    add_arguments(place)
    place.set_defaults(func=cmd_call)
    from hotline.simulate import add_arguments as add_simulate_arguments

    simulate = sub.add_parser(
        "simulate", help="run a seeded load through the emulator and compare with the ideal"
    )
    add_simulate_arguments(simulate)
    simulate.set_defaults(func=cmd_simulate)
    from hotline.supervisor_cli import add_subcommands

    add_subcommands(sub)  # report, users
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"configuration error, refusing to start:\n{exc}", file=sys.stderr)
        return 2
    except (SettingsError, SpeechSettingsError) as exc:
        print(f"settings error, refusing to start: {exc}", file=sys.stderr)
        return 2
