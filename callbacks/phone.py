"""Phone numbers: E.164 parsing, country prefix lookup, masking for logs."""

from __future__ import annotations

import re

from config.logs import mask_phone

__all__ = ["InvalidPhone", "country_zone", "is_e164", "mask_phone", "parse_e164"]

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")  # '+', country code, up to 15 digits in all
_SEPARATORS = re.compile(r"[\s\-().]")


class InvalidPhone(ValueError):
    """The text is not an E.164 number (the message says why, without echoing it)."""


def is_e164(number: str) -> bool:
    return bool(_E164.match(number))


def parse_e164(text: str) -> str:
    """Normalise `text` to E.164 ('+8613812345678'): spaces, dashes, dots and brackets are
    dropped and a leading international '00' becomes '+'. Raise InvalidPhone otherwise."""
    if not isinstance(text, str):
        raise InvalidPhone("must be a string")
    compact = _SEPARATORS.sub("", text.strip())
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not compact.startswith("+"):
        raise InvalidPhone("must start with + and the country code (E.164)")
    if not compact[1:].isdigit():
        raise InvalidPhone("must contain only digits after +")
    if not _E164.match(compact):
        raise InvalidPhone("must have 8 to 15 digits, the first not 0 (E.164)")
    return compact


def country_zone(number: str, countries: tuple[tuple[str, str], ...]) -> str | None:
    """The time zone of the longest configured prefix that `number` starts with."""
    best: tuple[str, str] | None = None
    for prefix, zone in countries:
        if number.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, zone)
    return best[1] if best else None
