"""Process settings from the environment: typed, frozen, validated once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name}: expected true/false, got {raw!r}")


def _parse_int(name: str, raw: str, *, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}: {value} is outside {low}..{high}")
    return value


@dataclass(frozen=True)
class Settings:
    account_sid: str = "AC00000000000000000000000000000000"
    auth_token: str = field(default="demo-auth-token", repr=False)
    public_url: str = "http://127.0.0.1:8080"
    redis_url: str | None = None
    port: int = 8080
    config_dir: Path = Path("config")
    data_dir: Path = Path("var")
    key_prefix: str = "hl:"
    emergency_number: str | None = None
    emergency_queue: str = "emergency"
    twilio_api_base: str | None = None
    api_tokens: Mapping[str, str] = field(default_factory=dict, repr=False)
    session_ttl_s: int = 4 * 3600
    json_logs: bool = True

    def __post_init__(self) -> None:
        parsed = urlparse(self.public_url)
        if parsed.scheme not in {"http", "https"} or not parsed.netloc:
            raise SettingsError(
                f"PUBLIC_URL: expected an http(s) base URL, got {self.public_url!r}"
            )
        if not self.auth_token:
            raise SettingsError("TWILIO_AUTH_TOKEN: must not be empty")

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        tokens: dict[str, str] = {}
        for item in env.get("HOTLINE_API_TOKENS", "").split(","):
            if not item.strip():
                continue
            token, _, role = item.strip().partition(":")
            tokens[token] = role or "supervisor"
        return cls(
            account_sid=env.get("TWILIO_ACCOUNT_SID", cls.account_sid),
            auth_token=env.get("TWILIO_AUTH_TOKEN", "demo-auth-token"),
            public_url=env.get("PUBLIC_URL", f"http://127.0.0.1:{env.get('PORT', '8080')}"),
            redis_url=env.get("REDIS_URL") or None,
            port=_parse_int("PORT", env.get("PORT", "8080"), low=1, high=65535),
            config_dir=Path(env.get("HOTLINE_CONFIG", "config")),
            data_dir=Path(env.get("HOTLINE_DATA", "var")),
            key_prefix=env.get("HOTLINE_KEY_PREFIX", "hl:"),
            emergency_number=env.get("HOTLINE_EMERGENCY_NUMBER") or None,
            emergency_queue=env.get("HOTLINE_EMERGENCY_QUEUE", "emergency"),
            twilio_api_base=env.get("TWILIO_API_BASE") or None,
            api_tokens=tokens,
            session_ttl_s=_parse_int(
                "HOTLINE_SESSION_TTL", env.get("HOTLINE_SESSION_TTL", "14400"), low=60, high=86400
            ),
            json_logs=_parse_bool("HOTLINE_JSON_LOGS", env.get("HOTLINE_JSON_LOGS", "true")),
        )
