"""ivr.http.parse_form decodes webhook bodies exactly as parse_qsl did."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.http import MAX_FORM_FIELDS, parse_form


def reference(text: str) -> dict[str, str]:
    return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS))


RAW = st.text(alphabet="ab=&+%2B3D0G é中\n", max_size=60)
PHONES = st.text(alphabet="%2B0189+ ", max_size=20).map(lambda v: "From=" + v + "&To=%2B86")
FIELDS = st.lists(st.tuples(st.text(max_size=12), st.text(max_size=20)), max_size=12)


@given(RAW)
@settings(max_examples=1500, deadline=None)
def test_raw_text_as_parse_qsl(text: str) -> None:
    assert parse_form(text) == reference(text)


@given(PHONES)
@settings(max_examples=800, deadline=None)
def test_phone_numbers_as_parse_qsl(text: str) -> None:
    assert parse_form(text) == reference(text)


@given(FIELDS)
@settings(max_examples=800, deadline=None)
def test_encoded_forms_as_parse_qsl(fields: list[tuple[str, str]]) -> None:
    text = urlencode(fields)
    assert parse_form(text) == reference(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "&",
        "a",
        "a=",
        "=b",
        "a=1&a=2",
        "a=1&&b=2",
        "From=%2B8613812345678&To=%2B8640012345&Digits=2&FinishedOnKey=",
        "x=%E4%B8%AD+%E6%96%87",
        "bad=%ZZ%E4%B8&ok=1",
        "a=b=c",
        "Speech=hello+world%21",
        "From=%2B&To=%2b1&Caller=%2B%2B1&Called=%2B1%",
    ],
)
def test_examples_as_parse_qsl(text: str) -> None:
    assert parse_form(text) == reference(text)


def test_too_many_fields_refused_as_before() -> None:
    text = "&".join(f"f{n}=1" for n in range(MAX_FORM_FIELDS))
    assert len(parse_form(text)) == MAX_FORM_FIELDS
    with pytest.raises(ValueError):
        reference(text + "&x=1")
    with pytest.raises(ValueError):
        parse_form(text + "&x=1")
