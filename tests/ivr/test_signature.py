"""SignatureChecker signs exactly as twilio's RequestValidator, and accepts what it accepts."""

from __future__ import annotations

import random
import string

import pytest
from twilio.request_validator import RequestValidator

from ivr.signature import SignatureChecker

TOKEN = "test-auth-token-0123456789abcdef"
ALPHABET = string.ascii_letters + string.digits + " +&=%?#/<>\"'\n元위"


def random_params(rng: random.Random) -> dict[str, str]:
    names = ["CallSid", "From", "To", "Digits", "SpeechResult", "Caller", "x", "Ü"]
    count = rng.randint(0, len(names))
    return {
        name: "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 20)))
        for name in rng.sample(names, count)
    }


def test_the_signature_is_twilios_for_any_form() -> None:
    rng = random.Random(8)
    checker = SignatureChecker(TOKEN, "https://h.test")
    validator = RequestValidator(TOKEN)
    for _ in range(500):
        params = random_params(rng)
        url = f"https://h.test/ivr/main?s={rng.randint(0, 99)}"
        assert checker.compute(url, params) == validator.compute_signature(url, params)


@pytest.mark.parametrize(
    "public",
    ["https://h.test", "https://h.test:443", "http://127.0.0.1:8080", "https://h.test/"],
)
@pytest.mark.parametrize("signed_base", ["https://h.test", "https://h.test:443"])
def test_accepts_what_requestvalidator_accepts(public: str, signed_base: str) -> None:
    params = {"CallSid": "CA" + "1" * 32, "Digits": "1", "From": "+8613800000000"}
    checker = SignatureChecker(TOKEN, public)
    validator = RequestValidator(TOKEN)
    path = "/ivr/main?s=3"
    signature = validator.compute_signature(signed_base + path, params)
    expected = validator.validate(checker.url_for(path), params, signature)
    assert checker.is_valid(path, params, signature) == expected
    assert not checker.is_valid(path, {**params, "Digits": "2"}, signature)
    assert not checker.is_valid(path, params, None)
    assert not checker.is_valid(path, params, "")
