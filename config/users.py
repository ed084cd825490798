"""Supervisor sign-in configuration (`users.yaml`): users, roles, sessions, sign-in limits,
wallboard thresholds, the statistics retention and the service-quality plan's targets.

Passwords are stored only as scrypt hashes (`hash_password`), in the form
`scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`; `hotline users hash-password` prints one.
Roles: `supervisor` (everything) and `viewer` (read only, phone numbers masked).
Every problem names file, line and field; all are raised together as one ConfigError.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.errors import ConfigError, ConfigIssue
from config.yamlload import FieldReader, LocatedMap, load_yaml_file, load_yaml_text

USER_ROLES = ("supervisor", "viewer")
_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")

# scrypt cost: n=2**15, r=8 uses 32 MiB and ~0.1 s per check: slow for a guesser, fine
# for a sign-in (run off the event loop).
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
_MAXMEM = 128 * 1024 * 1024


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """A salted scrypt hash of `password` in the stored form."""
    if not password:
        raise ValueError("empty password")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def _parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
    except ValueError:
        return None
    if n < 2 or n & (n - 1) or not 1 <= r <= 64 or not 1 <= p <= 16 or len(digest) < 16:
        return None
    if n * r * 128 * 2 > _MAXMEM or len(salt) < 8:
        return None
    return n, r, p, salt, digest


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches the stored scrypt hash (constant-time comparison)."""
    parsed = _parse_hash(stored)
    if parsed is None:
        return False
    n, r, p, salt, digest = parsed
    candidate = hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=len(digest)
    )
    return hmac.compare_digest(candidate, digest)


# A hash no password matches, checked for unknown user names so that a sign-in takes the
# same time whether or not the name exists.
_DUMMY_SALT = b"hotline-no-such-user"


def burn_password_check(password: str) -> None:
    hashlib.scrypt(
        password.encode(),
        salt=_DUMMY_SALT,
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        maxmem=_MAXMEM,
        dklen=32,
    )


@dataclass(frozen=True)
class SupervisorUser:
    name: str
    role: str
    password_hash: str = field(repr=False)
    display_name: str = ""


@dataclass(frozen=True)
class SignInLimits:
    """Sign-in attempts allowed per window: per client address and per user name."""

    per_client: int = 20
    per_user: int = 5  # failed attempts
    window_s: int = 900


@dataclass(frozen=True)
class PlanTargets:
    """The service-quality plan: satisfaction up 10 %, complaints down 15 % against a
    baseline, complaints answered within 24 h. Baseline values are optional; without them
    the report measures the change against the previous month."""

    satisfaction_increase: float = 0.10
    complaints_decrease: float = 0.15
    complaint_response_h: float = 24.0
    complaint_response_share: float = 0.95  # share of complaints to answer within 24 h
    baseline_satisfaction_index: float | None = None
    baseline_csat: float | None = None
    baseline_complaints_per_1000: float | None = None


@dataclass(frozen=True)
class SupervisorsConfig:
    users: Mapping[str, SupervisorUser] = field(default_factory=dict)
    session_ttl_s: int = 8 * 3600
    signin: SignInLimits = field(default_factory=SignInLimits)
    amber_s: float = 20.0  # wallboard: longest wait turns amber from here
    red_s: float = 30.0  # ... and red from here
    retention_days: int = 400  # daily aggregates and wait histograms kept this long
    plan: PlanTargets = field(default_factory=PlanTargets)


_TOP = {"users", "sessions", "signin_limits", "dashboard", "statistics", "plan"}


def parse_users(data: Any, file: str) -> SupervisorsConfig:
    issues: list[ConfigIssue] = []
    rd = FieldReader(file, issues)
    if data is None:
        data = LocatedMap()
        data.key_lines = {}
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue(file, 1, "", "the file must hold a mapping")])
    rd.unknown_fields(data, _TOP, "")
    users: dict[str, SupervisorUser] = {}
    raw_users = rd.mapping(data, "users", "users", required=False)
    for name, entry in raw_users.items():
        where = f"users.{name}"
        if not _NAME.match(str(name)):
            rd.error(raw_users, name, where, "user names are lower-case letters, digits, _ . -")
            continue
        if not isinstance(entry, dict):
            rd.error(raw_users, name, where, "must be a mapping")
            continue
        rd.unknown_fields(entry, {"role", "password_hash", "name"}, where)
        role = rd.string(entry, "role", where)
        if role is not None and role not in USER_ROLES:
            rd.error(entry, "role", where, f"field 'role' must be one of {', '.join(USER_ROLES)}")
        pw = rd.string(entry, "password_hash", where)
        if pw is not None and _parse_hash(pw) is None:
            rd.error(
                entry,
                "password_hash",
                where,
                "not an scrypt hash (make one with: hotline users hash-password)",
            )
        display = rd.string(entry, "name", where, required=False, default="") or ""
        if role in USER_ROLES and pw is not None:
            users[str(name)] = SupervisorUser(str(name), role, pw, display)
    sessions = rd.mapping(data, "sessions", "sessions", required=False)
    rd.unknown_fields(sessions, {"ttl_s"}, "sessions")
    limits = rd.mapping(data, "signin_limits", "signin_limits", required=False)
    rd.unknown_fields(limits, {"per_client", "per_user", "window_s"}, "signin_limits")
    dash = rd.mapping(data, "dashboard", "dashboard", required=False)
    rd.unknown_fields(dash, {"amber_s", "red_s"}, "dashboard")
    stats = rd.mapping(data, "statistics", "statistics", required=False)
    rd.unknown_fields(stats, {"retention_days"}, "statistics")
    plan = rd.mapping(data, "plan", "plan", required=False)
    plan_fields = {
        "satisfaction_increase",
        "complaints_decrease",
        "complaint_response_h",
        "complaint_response_share",
        "baseline_satisfaction_index",
        "baseline_csat",
        "baseline_complaints_per_1000",
    }
    rd.unknown_fields(plan, plan_fields, "plan")
    amber = rd.number(dash, "amber_s", "dashboard", default=20.0, low=1, high=3600)
    red = rd.number(dash, "red_s", "dashboard", default=30.0, low=1, high=3600)
    if red < amber:
        rd.error(dash, "red_s", "dashboard", "red_s must not be below amber_s")

    def optional(name: str, high: float) -> float | None:
        if plan.get(name) is None:
            return None
        return rd.number(plan, name, "plan", default=0.0, low=0, high=high)

    config = SupervisorsConfig(
        users=users,
        session_ttl_s=int(
            rd.number(sessions, "ttl_s", "sessions", default=28800, low=1, high=7 * 86400)
        ),
        signin=SignInLimits(
            per_client=int(
                rd.number(limits, "per_client", "signin_limits", default=20, low=1, high=10000)
            ),
            per_user=int(
                rd.number(limits, "per_user", "signin_limits", default=5, low=1, high=1000)
            ),
            window_s=int(
                rd.number(limits, "window_s", "signin_limits", default=900, low=1, high=86400)
            ),
        ),
        amber_s=amber,
        red_s=red,
        retention_days=int(
            rd.number(stats, "retention_days", "statistics", default=400, low=1, high=3660)
        ),
        plan=PlanTargets(
            satisfaction_increase=rd.number(
                plan, "satisfaction_increase", "plan", default=0.10, low=0, high=10
            ),
            complaints_decrease=rd.number(
                plan, "complaints_decrease", "plan", default=0.15, low=0, high=1
            ),
            complaint_response_h=rd.number(
                plan, "complaint_response_h", "plan", default=24, low=0.1, high=720
            ),
            complaint_response_share=rd.number(
                plan, "complaint_response_share", "plan", default=0.95, low=0, high=1
            ),
            baseline_satisfaction_index=optional("baseline_satisfaction_index", 5),
            baseline_csat=optional("baseline_csat", 1),
            baseline_complaints_per_1000=optional("baseline_complaints_per_1000", 1000),
        ),
    )
    if issues:
        raise ConfigError(issues)
    return config


def load_users_text(text: str, file: str = "users.yaml") -> SupervisorsConfig:
    return parse_users(load_yaml_text(text, file), file)


def load_users(path: Path) -> SupervisorsConfig:
    """The file's configuration; a missing file means no users (bearer tokens only)."""
    if not path.exists():
        return SupervisorsConfig()
    return parse_users(load_yaml_file(path), str(path))
