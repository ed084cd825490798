"""`hotline report` and `hotline users` (added to the command line by hotline.cli)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import re
import sys
from pathlib import Path

from config.errors import ConfigError
from config.keys import Keys
from config.loader import load_config
from config.redis_conn import open_redis
from config.settings import Settings
from config.users import hash_password, load_users


def _month(raw: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", raw):
        raise argparse.ArgumentTypeError(f"expected YYYY-MM, got {raw!r}")
    return raw


async def _report(settings: Settings, month: str, out: Path) -> int:
    from hotline.report import build_report, summary_text

    config = load_config(settings.config_dir)
    users = load_users(settings.config_dir / "users.yaml")
    redis, close = await open_redis(settings.redis_url, settings.data_dir)
    try:
        result = await build_report(
            redis, Keys(prefix=settings.key_prefix), config, users, month, out
        )
    finally:
        await close()
    print(summary_text(result), end="")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    return asyncio.run(_report(settings, args.month, Path(args.out)))


def cmd_hash_password(args: argparse.Namespace) -> int:
    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("the passwords differ", file=sys.stderr)
            return 1
    if len(password) < 12:
        print("use at least 12 characters", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


def cmd_check_users(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    path = Path(args.file) if args.file else settings.config_dir / "users.yaml"
    try:
        config = load_users(path)
    except ConfigError as exc:
        print(f"{exc}", file=sys.stderr)
        return 2
    roles = ", ".join(f"{u.name} ({u.role})" for u in config.users.values()) or "none"
    print(f"{path}: valid; users: {roles}")
    return 0


def add_subcommands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = sub.add_parser("report", help="write the monthly KPI report (HTML, PNG, CSV)")
    report.add_argument("--month", type=_month, required=True, help="YYYY-MM")
    report.add_argument("--out", default=".", help="directory for report-YYYY-MM/ (default .)")
    report.set_defaults(func=cmd_report)
    users = sub.add_parser("users", help="supervisor users: hash a password, check users.yaml")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    hashing = users_sub.add_parser("hash-password", help="print an scrypt hash for users.yaml")
    hashing.add_argument("--stdin", action="store_true", help="read the password from stdin")
    hashing.set_defaults(func=cmd_hash_password)
    check = users_sub.add_parser("check", help="validate users.yaml")
    check.add_argument("--file", default=None)
    check.set_defaults(func=cmd_check_users)
