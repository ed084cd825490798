"""Settings from the environment: typed, validated, and never showing the auth token."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import Settings, SettingsError


def test_defaults_run_the_demo() -> None:
    settings = Settings.from_env({})
    assert settings.redis_url is None  # embedded Redis
    assert settings.port == 8080
    assert settings.config_dir == Path("config")
    assert settings.base_url == "http://127.0.0.1:8080"


def test_environment_is_parsed() -> None:
    settings = Settings.from_env(
        {
            "TWILIO_ACCOUNT_SID": "AC" + "9" * 32,
            "TWILIO_AUTH_TOKEN": "s3cret-token-value",
            "PUBLIC_URL": "https://hotline.bank.example/",
            "REDIS_URL": "redis://10.0.0.5:6379/2",
            "PORT": "9000",
            "HOTLINE_CONFIG": "/etc/hotline",
            "HOTLINE_API_TOKENS": "abc:care, def:viewer,ghi",
            "HOTLINE_JSON_LOGS": "false",
        }
    )
    assert settings.base_url == "https://hotline.bank.example"
    assert settings.port == 9000
    assert settings.config_dir == Path("/etc/hotline")
    assert dict(settings.api_tokens) == {"abc": "care", "def": "viewer", "ghi": "supervisor"}
    assert settings.json_logs is False


def test_the_auth_token_never_shows_in_repr() -> None:
    settings = Settings.from_env(
        {"TWILIO_AUTH_TOKEN": "s3cret-token-value", "HOTLINE_API_TOKENS": "tok-123:care"}
    )
    assert "s3cret-token-value" not in repr(settings)
    assert "tok-123" not in repr(settings)
    assert "s3cret-token-value" not in str(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "eighty"}, "PORT: expected an integer"),
        ({"PORT": "70000"}, "PORT: 70000 is outside 1..65535"),
        ({"HOTLINE_JSON_LOGS": "maybe"}, "HOTLINE_JSON_LOGS: expected true/false"),
        ({"PUBLIC_URL": "hotline.example"}, "PUBLIC_URL: expected an http(s) base URL"),
        ({"TWILIO_AUTH_TOKEN": ""}, "TWILIO_AUTH_TOKEN: must not be empty"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(env)
