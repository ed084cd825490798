"""Checking X-Twilio-Signature with the twilio library's own signing rules.

`RequestValidator.validate` parses the URL and computes two HMACs on every request (the URL
with and without the port, since Twilio's signing of the port is inconsistent) and
compares them with a character loop. Our public base URL is fixed, so both variants are
built once here; the variant Twilio normally signs is tried first and the other only when
it fails. The string that is signed comes from the library's `compute_signature`, so the
canonicalisation stays the library's.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from urllib.parse import urlparse

from twilio.request_validator import RequestValidator, add_port, remove_port


class SignatureChecker:
    def __init__(self, auth_token: str, public_url: str) -> None:
        self._validator = RequestValidator(auth_token)
        self._base = public_url.rstrip("/")
        parsed = urlparse(self._base)
        # the URL as configured first (what Twilio signs in the common case), then the other
        variants = (remove_port(parsed), add_port(parsed))
        self._bases = variants[::-1] if parsed.port else variants

    def __repr__(self) -> str:  # never show the token
        return f"SignatureChecker(public_url={self._base!r})"

    def url_for(self, path_qs: str) -> str:
        """The URL Twilio signed: our public base (behind any proxy) plus path and query."""
        return self._base + path_qs

    def is_valid(self, path_qs: str, params: Mapping[str, str], signature: str | None) -> bool:
        if not signature:
            return False
        values = dict(params)
        expected = signature.encode()
        for base in self._bases:
            computed = self._validator.compute_signature(base + path_qs, values)
            if hmac.compare_digest(str(computed).encode(), expected):
                return True
        return False
