"""The emulator's signatures, pinned against the twilio library's RequestValidator."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from emulator.signing import compute_signature, is_valid_signature, signature_payload

TOKEN = "12345"

CASES = [
    ("https://mycompany.com/myapp.php?foo=1&bar=2", {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }),
    ("http://127.0.0.1:8080/voice", {"CallSid": "CA1", "Digits": ""}),
    ("http://localhost:8080/ivr/node?lang=ko&step=2", {"SpeechResult": "잔액 조회", "Z": "ü"}),
    ("https://example.com:8443/a%20b?x=%2F", {}),
    ("https://example.com/voice", {"B": "2", "A": "1", "AB": "0"}),
]


@pytest.mark.parametrize(("url", "params"), CASES)
def test_matches_request_validator(url: str, params: dict[str, str]) -> None:
    ours = compute_signature(TOKEN, url, params)
    validator = RequestValidator(TOKEN)
    assert ours == validator.compute_signature(url, params)
    assert validator.validate(url, params, ours)
    assert is_valid_signature(TOKEN, url, params, validator.compute_signature(url, params))


def test_twilio_documented_example() -> None:
    # The example used in Twilio's security docs and twilio-python's tests (token 12345).
    url, params = CASES[0]
    assert compute_signature(TOKEN, url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_payload_sorts_by_name_and_appends_values() -> None:
    assert signature_payload("u", {"b": "2", "a": "1"}) == "ua1b2"


def test_wrong_token_or_url_fails() -> None:
    url, params = CASES[1]
    sig = compute_signature(TOKEN, url, params)
    assert not RequestValidator("other").validate(url, params, sig)
    assert not is_valid_signature(TOKEN, url + "x", params, sig)


@given(
    path=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20),
    params=st.dictionaries(
        st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=8),
        st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12),
        max_size=6,
    ),
    port=st.one_of(st.none(), st.integers(1, 65535)),
)
def test_any_input_agrees_with_validator(
    path: str, params: dict[str, str], port: int | None
) -> None:
    host = "example.com" + (f":{port}" if port else "")
    url = f"https://{host}/{path}?q=1"
    assert compute_signature(TOKEN, url, params) == RequestValidator(TOKEN).compute_signature(
        url, params
    )
