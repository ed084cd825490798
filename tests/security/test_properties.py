"""Property-based tests (hypothesis) of what hostile or unlucky input reaches:
Twilio's webhook parameters, the configuration loader and the calling-window arithmetic."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from callbacks.windows import may_dial, next_dial_time
from config.calendar import Calendar, TimeRange, load_calendars
from config.calling import parse_calling
from config.errors import ConfigError, ConfigIssue
from config.menus import parse_flow
from config.queues import parse_queues
from config.surveys import parse_surveys
from config.yamlload import load_yaml_file, load_yaml_text
from ivr.twilio_params import (
    BadRequestParams,
    CallInfo,
    parse_call,
    parse_gather,
    parse_record,
    parse_status,
)

CONFIG = Path(__file__).resolve().parents[2] / "config"
FIELDS = (
    "CallSid", "AccountSid", "From", "To", "Direction", "CallStatus", "Digits",
    "SpeechResult", "RecordingUrl", "RecordingDuration", "CallDuration", "SequenceNumber",
)  # fmt: skip
VALID_SID = "CA" + "0123456789abcdef" * 2

# --- Twilio's parameters ----------------------------------------------------------------
values = st.one_of(
    st.text(max_size=80),
    st.text(alphabet="0123456789*#w \n\t²٣１-+", max_size=20),
    st.text(alphabet="0123456789²٣１", min_size=1, max_size=4),
    st.sampled_from(["", VALID_SID, VALID_SID + "\n", "completed", "in-progress", "-1", "9" * 40]),
    st.text(min_size=250, max_size=1100),
)
forms = st.dictionaries(st.sampled_from(FIELDS), values, max_size=len(FIELDS))


@settings(max_examples=400, deadline=None)
@given(form=forms, with_sid=st.booleans())
@example(form={"CallSid": VALID_SID + "\n"}, with_sid=False)  # "$" matched before a newline
@example(form={"SequenceNumber": "²"}, with_sid=True)  # "²".isdigit(), int("²") fails
@example(form={"Digits": "12\n"}, with_sid=True)
def test_parsing_any_form_returns_values_or_bad_request(
    form: dict[str, str], with_sid: bool
) -> None:
    if with_sid:
        form = {**form, "CallSid": VALID_SID}
    for parse in (parse_call, parse_gather, parse_record, parse_status):
        try:
            parsed = parse(form)
        except BadRequestParams:
            continue
        call: CallInfo = parsed if isinstance(parsed, CallInfo) else parsed.call
        # what passes is exactly what Twilio can send
        assert call.call_sid.isascii() and len(call.call_sid) == 34
        assert "\n" not in call.call_sid
        digits = getattr(parsed, "digits", None)
        if digits is not None:
            assert all(c in "0123456789*#w" for c in digits), repr(digits)
        for name in ("duration_s",):
            value = getattr(parsed, name, 0)
            assert isinstance(value, int) and value >= 0
        sequence = getattr(parsed, "sequence", None)
        assert sequence is None or (isinstance(sequence, int) and sequence >= 0)


# --- the configuration loader -----------------------------------------------------------
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**12),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["00:00-24:00", "25:00-26:00", "+8613812345678", "general", "bank", "-1"]),
)  # fmt: skip
yaml_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)

REAL = {name: yaml.safe_load((CONFIG / name).read_text(encoding="utf-8")) for name in (
    "calendars.yaml", "queues.yaml", "menus.yaml", "calling.yaml", "surveys.yaml",
)}  # fmt: skip


def paths_of(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths_of(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths_of(v, (*prefix, i))
    return out


def mutate(doc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    doc = copy.deepcopy(doc)
    target = doc
    for step in path[:-1]:
        target = target[step]
    if delete and isinstance(target, dict):
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


def parse(name: str, text: str) -> object:
    data = load_yaml_text(text, name)
    calendars_data = load_yaml_file(CONFIG / "calendars.yaml")
    issues: list[ConfigIssue] = []
    if name == "calendars.yaml":
        result = load_calendars(data, name, issues)
        if issues:
            raise ConfigError(issues)
        return result
    calendars = load_calendars(calendars_data, "calendars.yaml", issues)
    if name == "queues.yaml":
        return parse_queues(data, name, calendars)
    if name == "menus.yaml":
        return parse_flow(data, name, queues={"general", "cards", "complaints", "vip", "care"})
    if name == "calling.yaml":
        return parse_calling(data, name)
    return parse_surveys(data, name)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(REAL)),
    pick=st.integers(0, 10**6),
    value=yaml_values,
    delete=st.booleans(),
)
def test_a_mutated_config_file_loads_or_raises_config_error(
    name: str, pick: int, value: Any, delete: bool
) -> None:
    doc = REAL[name]
    paths = paths_of(doc)
    mutated = mutate(doc, paths[pick % len(paths)], value, delete)
    text = yaml.safe_dump(mutated, allow_unicode=True)
    try:
        parse(name, text)
    except ConfigError as exc:
        assert exc.issues and all(i.file == name for i in exc.issues)


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(REAL)), text=st.text(max_size=300))
def test_random_text_as_a_config_file_loads_or_raises_config_error(name: str, text: str) -> None:
    try:
        parse(name, text)
    except ConfigError:
        pass


# --- calling windows --------------------------------------------------------------------
ZONES = ["UTC", "Asia/Shanghai", "Asia/Seoul", "Europe/London", "America/New_York",
         "Australia/Lord_Howe", "America/St_Johns"]  # fmt: skip


@st.composite
def time_ranges(draw: st.DrawFn) -> tuple[TimeRange, ...]:
    ranges = []
    for _ in range(draw(st.integers(0, 2))):
        start = draw(st.integers(0, 24 * 60 - 1))
        end = draw(st.integers(start + 1, 24 * 60))
        end_t = time.max if end == 24 * 60 else time(end // 60, end % 60)
        ranges.append(TimeRange(time(start // 60, start % 60), end_t))
    return tuple(ranges)


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    weekly = tuple(draw(time_ranges()) for _ in range(7))
    holidays = frozenset(
        draw(st.lists(st.dates(date(2026, 1, 1), date(2027, 12, 31)), max_size=10))
    )
    return Calendar(
        name="w", timezone=draw(st.sampled_from(ZONES)), weekly=weekly, holidays=holidays
    )


moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 6, 30), timezones=st.just(UTC)
)


@settings(max_examples=400, deadline=None)
@given(
    window=calendars(),
    after=moments,
    min_left_min=st.integers(0, 180),
    limit_h=st.none() | st.integers(0, 24 * 40),
)
def test_next_dial_time_is_inside_the_window(
    window: Calendar, after: datetime, min_left_min: int, limit_h: int | None
) -> None:
    min_left = timedelta(minutes=min_left_min)
    not_after = after + timedelta(hours=limit_h) if limit_h is not None else None
    when = next_dial_time(after, window, min_left=min_left, not_after=not_after)
    if when is None:
        return
    assert when >= after
    assert not_after is None or when <= not_after
    assert window.is_open(when), (when, window)
    assert may_dial(when, window, min_left), (when, window.close_of(when))


@settings(max_examples=150, deadline=None)
@given(window=calendars(), after=moments)
def test_an_open_moment_is_its_own_dial_time(window: Calendar, after: datetime) -> None:
    moment = window.next_open(after, horizon_days=62)
    if moment is None:
        return
    assert moment >= after and window.is_open(moment), (after, moment)
    close = window.close_of(moment)
    assert close is not None and close > moment
    assert next_dial_time(moment, window) == moment
