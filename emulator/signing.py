"""Webhook signatures exactly as Twilio computes them.

Twilio signs every webhook with HMAC-SHA1 keyed by the account's auth token, over the
full URL it requested (scheme, host, port if any, path and query string, exactly as
requested) followed, for POST requests, by each form parameter name and value
concatenated in order of the parameter name (Unicode code points); the digest is
base64-encoded and sent in the ``X-Twilio-Signature`` header. GET requests carry their
parameters in the query string, which is part of the URL, and sign no body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping

SIGNATURE_HEADER = "X-Twilio-Signature"


def signature_payload(url: str, params: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """The string Twilio signs: the URL, then every name+value sorted by name (then value)."""
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    return url + "".join(name + value for name, value in sorted(pairs))


def compute_signature(
    auth_token: str, url: str, params: Mapping[str, str] | Iterable[tuple[str, str]] = ()
) -> str:
    """The value of the X-Twilio-Signature header for a request to `url` with `params`."""
    digest = hmac.new(
        auth_token.encode("utf-8"),
        signature_payload(url, params).encode("utf-8"),
        hashlib.sha1,
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def is_valid_signature(
    auth_token: str,
    url: str,
    params: Mapping[str, str] | Iterable[tuple[str, str]],
    signature: str,
) -> bool:
    """Constant-time check of a signature (the URL must be exactly the one requested)."""
    return hmac.compare_digest(compute_signature(auth_token, url, params), signature)
