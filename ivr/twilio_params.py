"""Twilio's webhook parameters, parsed at the edge into frozen values.

Handlers never read the raw form. Missing optional parameters are None (Twilio omits
`Digits` on a timeout); a missing or malformed required one raises BadRequestParams.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# \Z, not $: "$" also matches before a final newline ("CA...\n" would pass)
_CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}\Z")
_DIGITS = re.compile(r"^[0-9*#w]{0,64}\Z")
CALL_STATUSES = frozenset(
    {
        "queued",
        "initiated",
        "ringing",
        "in-progress",
        "completed",
        "busy",
        "failed",
        "no-answer",
        "canceled",
    }
)


class BadRequestParams(ValueError):
    """The request does not carry what Twilio always sends."""


def _field(form: Mapping[str, str], name: str, limit: int = 256) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if len(value) > limit:
        raise BadRequestParams(f"{name} is longer than {limit} characters")
    return value


@dataclass(frozen=True)
class CallInfo:
    call_sid: str
    account_sid: str
    from_number: str = field(repr=False)
    to_number: str = field(repr=False)
    direction: str
    call_status: str


@dataclass(frozen=True)
class GatherResult:
    call: CallInfo
    digits: str | None = field(repr=False)  # None: no input (timeout)
    speech: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RecordResult:
    call: CallInfo
    recording_url: str
    duration_s: int


@dataclass(frozen=True)
class StatusEvent:
    call: CallInfo
    duration_s: int
    sequence: int | None


def parse_call(form: Mapping[str, str]) -> CallInfo:
    call_sid = _field(form, "CallSid") or ""
    if not _CALL_SID.match(call_sid):
        raise BadRequestParams("CallSid is missing or malformed")
    status = (_field(form, "CallStatus") or "in-progress").lower()
    if status not in CALL_STATUSES:
        raise BadRequestParams(f"CallStatus {status!r} is unknown")
    return CallInfo(
        call_sid=call_sid,
        account_sid=_field(form, "AccountSid") or "",
        from_number=_field(form, "From", 64) or "",
        to_number=_field(form, "To", 64) or "",
        direction=_field(form, "Direction", 32) or "inbound",
        call_status=status,
    )


def parse_gather(form: Mapping[str, str]) -> GatherResult:
    digits = _field(form, "Digits", 64)
    if digits is not None and not _DIGITS.match(digits):
        raise BadRequestParams("Digits holds characters a keypad cannot send")
    return GatherResult(
        call=parse_call(form),
        digits=digits or None,
        speech=_field(form, "SpeechResult", 1024),
    )


def _int(form: Mapping[str, str], name: str) -> int:
    raw = _field(form, name, 16)
    if raw is None or raw == "":
        return 0
    try:
        return max(0, int(raw))
    except ValueError:
        raise BadRequestParams(f"{name} is not a number") from None


def parse_record(form: Mapping[str, str]) -> RecordResult:
    url = _field(form, "RecordingUrl", 1024) or ""
    if url and not url.startswith(("https://", "http://")):
        raise BadRequestParams("RecordingUrl is not an http(s) URL")
    return RecordResult(
        call=parse_call(form), recording_url=url, duration_s=_int(form, "RecordingDuration")
    )


def parse_status(form: Mapping[str, str]) -> StatusEvent:
    raw_seq = _field(form, "SequenceNumber", 16)
    return StatusEvent(
        call=parse_call(form),
        duration_s=_int(form, "CallDuration"),
        # isascii: str.isdigit() is also true for "²", which int() refuses
        sequence=int(raw_seq) if raw_seq and raw_seq.isascii() and raw_seq.isdigit() else None,
    )
