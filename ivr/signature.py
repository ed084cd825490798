"""Checking X-Twilio-Signature by Twilio's signing rules.

Twilio signs the full URL it requested followed by every form field's name and value,
sorted by name, with HMAC-SHA1 under the auth token, base64-encoded (twilio's
`RequestValidator.compute_signature`; tests/ivr/test_signature.py checks that both give
the same signature). Its `validate` parses the URL and computes two HMACs on every
request (the URL with and without the port, since Twilio's signing of the port is
inconsistent) and compares them with a character loop. Our public base URL is fixed, so
both variants are built once here; the variant Twilio normally signs is tried first and
the other only when it fails; the keyed HMAC is set up once and copied per request.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from hashlib import sha1
from urllib.parse import urlparse

from twilio.request_validator import add_port, remove_port


class SignatureChecker:
    def __init__(self, auth_token: str, public_url: str) -> None:
        self._keyed = hmac.new(auth_token.encode("utf-8"), digestmod=sha1)
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

    def compute(self, url: str, params: Mapping[str, str]) -> str:
        signed = url + "".join(name + params[name] for name in sorted(params))
        mac = self._keyed.copy()
        mac.update(signed.encode("utf-8"))
        return base64.b64encode(mac.digest()).decode("ascii")

    def is_valid(self, path_qs: str, params: Mapping[str, str], signature: str | None) -> bool:
        if not signature:
            return False
        expected = signature.encode()
        for base in self._bases:
            if hmac.compare_digest(self.compute(base + path_qs, params).encode(), expected):
                return True
        return False
