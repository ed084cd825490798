"""Checking X-Twilio-Signature with the twilio library's own RequestValidator."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import RequestValidator


class SignatureChecker:
    def __init__(self, auth_token: str, public_url: str) -> None:
        self._validator = RequestValidator(auth_token)
        self._base = public_url.rstrip("/")

    def __repr__(self) -> str:  # never show the token
        return f"SignatureChecker(public_url={self._base!r})"

    def url_for(self, path_qs: str) -> str:
        """The URL Twilio signed: our public base (behind any proxy) plus path and query."""
        return self._base + path_qs

    def is_valid(self, path_qs: str, params: Mapping[str, str], signature: str | None) -> bool:
        if not signature:
            return False
        return bool(self._validator.validate(self.url_for(path_qs), dict(params), signature))
