"""TwiML parsed at the edge into frozen verb values.

`parse_twiml(text)` returns a `Document` (verbs plus the warnings Twilio would log) or
raises `TwimlError(12100)` when the XML is malformed or its root is not <Response>.
Like Twilio, unknown verbs, unknown attributes and verbs nested where they are not
allowed are logged as 12200 (Gather: 13320) *warnings* and ignored; attribute values
that are out of range are logged with their verb's code and replaced by the default.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from emulator.errors import DebuggerEntry, TwimlError, entry

# ---------------------------------------------------------------- verbs


@dataclass(frozen=True)
class Say:
    text: str
    voice: str = ""
    language: str = "en-US"
    loop: int = 1


@dataclass(frozen=True)
class Play:
    url: str
    loop: int = 1
    digits: str = ""


@dataclass(frozen=True)
class Pause:
    length: int = 1


@dataclass(frozen=True)
class Gather:
    action: str | None = None
    method: str = "POST"
    timeout: int = 5
    num_digits: int | None = None
    finish_on_key: str = "#"
    input: str = "dtmf"
    action_on_empty_result: bool = False
    language: str = "en-US"
    prompts: tuple[Say | Play | Pause, ...] = ()


@dataclass(frozen=True)
class Redirect:
    url: str
    method: str = "POST"


@dataclass(frozen=True)
class Enqueue:
    name: str
    action: str | None = None
    method: str = "POST"
    wait_url: str | None = None
    wait_url_method: str = "POST"


@dataclass(frozen=True)
class Leave:
    pass


@dataclass(frozen=True)
class DialNumber:
    number: str
    url: str | None = None
    method: str = "POST"
    status_callback: str | None = None
    status_callback_event: tuple[str, ...] = ("completed",)


@dataclass(frozen=True)
class DialClient:
    identity: str
    url: str | None = None
    method: str = "POST"
    status_callback: str | None = None
    status_callback_event: tuple[str, ...] = ("completed",)


@dataclass(frozen=True)
class DialQueue:
    name: str
    url: str | None = None
    method: str = "POST"


DialTarget = DialNumber | DialClient | DialQueue


@dataclass(frozen=True)
class Dial:
    targets: tuple[DialTarget, ...]
    action: str | None = None
    method: str = "POST"
    timeout: int = 30
    caller_id: str | None = None
    time_limit: int = 14400


@dataclass(frozen=True)
class Record:
    action: str | None = None
    method: str = "POST"
    timeout: int = 5
    max_length: int = 3600
    finish_on_key: str = "1234567890*#"
    play_beep: bool = True


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class Reject:
    reason: str = "rejected"


@dataclass(frozen=True)
class Stream:
    url: str
    name: str = ""
    track: str = "inbound_track"
    parameters: tuple[tuple[str, str], ...] = ()
    status_callback: str | None = None


@dataclass(frozen=True)
class Connect:
    stream: Stream | None
    action: str | None = None
    method: str = "POST"


@dataclass(frozen=True)
class Start:
    stream: Stream | None


@dataclass(frozen=True)
class Stop:
    stream_name: str | None


Verb = (
    Say
    | Play
    | Pause
    | Gather
    | Redirect
    | Enqueue
    | Leave
    | Dial
    | Record
    | Hangup
    | Reject
    | Connect
    | Start
    | Stop
)


@dataclass(frozen=True)
class Document:
    verbs: tuple[Verb, ...]
    warnings: tuple[DebuggerEntry, ...] = field(default=())


def verb_name(verb: Verb) -> str:
    return type(verb).__name__


# ---------------------------------------------------------------- parsing

_COMMON = {"method"}
_ALLOWED: dict[str, set[str]] = {
    "Say": {"voice", "language", "loop"},
    "Play": {"loop", "digits"},
    "Pause": {"length"},
    "Gather": {
        "action",
        "method",
        "timeout",
        "numDigits",
        "finishOnKey",
        "input",
        "actionOnEmptyResult",
        "language",
        "hints",
        "speechTimeout",
        "speechModel",
        "profanityFilter",
        "partialResultCallback",
        "partialResultCallbackMethod",
        "enhanced",
        "bargeIn",
        "debug",
    },
    "Redirect": {"method"},
    "Enqueue": {"action", "method", "waitUrl", "waitUrlMethod", "workflowSid"},
    "Leave": set(),
    "Dial": {
        "action",
        "method",
        "timeout",
        "callerId",
        "timeLimit",
        "hangupOnStar",
        "record",
        "trim",
        "answerOnBridge",
        "ringTone",
        "recordingStatusCallback",
        "recordingStatusCallbackMethod",
        "recordingStatusCallbackEvent",
        "sequential",
        "referUrl",
        "referMethod",
        "events",
    },
    "Number": {
        "url",
        "method",
        "statusCallback",
        "statusCallbackMethod",
        "statusCallbackEvent",
        "sendDigits",
        "machineDetection",
        "amdStatusCallback",
        "byoc",
    },
    "Client": {"url", "method", "statusCallback", "statusCallbackMethod", "statusCallbackEvent"},
    "Queue": {"url", "method", "reservationSid", "postWorkActivitySid"},
    "Record": {
        "action",
        "method",
        "timeout",
        "maxLength",
        "finishOnKey",
        "playBeep",
        "trim",
        "transcribe",
        "transcribeCallback",
        "recordingStatusCallback",
        "recordingStatusCallbackMethod",
        "recordingStatusCallbackEvent",
        "recordingChannels",
    },
    "Hangup": set(),
    "Reject": {"reason"},
    "Connect": {"action", "method"},
    "Start": {"action", "method"},
    "Stop": set(),
    "Stream": {
        "url",
        "name",
        "track",
        "statusCallback",
        "statusCallbackMethod",
        "connectorName",
    },
    "Parameter": {"name", "value"},
    "Identity": set(),
}
_GATHER_NESTABLE = {"Say", "Play", "Pause"}
_METHODS = {"GET", "POST"}
_DTMF_KEYS = set("0123456789*#")


class _Parser:
    def __init__(self) -> None:
        self.warnings: list[DebuggerEntry] = []

    def warn(self, code: int, detail: str) -> None:
        self.warnings.append(entry(code, detail=detail))

    def attrs(self, el: ET.Element) -> dict[str, str]:
        allowed = _ALLOWED.get(el.tag, set())
        for name in el.attrib:
            if name not in allowed:
                self.warn(
                    12200, f"Attribute '{name}' is not allowed to appear in element '{el.tag}'"
                )
        return dict(el.attrib)

    def int_attr(
        self, a: dict[str, str], name: str, default: int, code: int, *, minimum: int = 0
    ) -> int:
        raw = a.get(name)
        if raw is None:
            return default
        try:
            value = int(raw.strip())
        except ValueError:
            self.warn(code, f"{name}={raw!r}")
            return default
        if value < minimum:
            self.warn(code, f"{name}={raw!r}")
            return default
        return value

    def method(self, a: dict[str, str], name: str = "method", code: int = 12200) -> str:
        raw = a.get(name, "POST").upper()
        if raw not in _METHODS:
            self.warn(code, f"{name}={a.get(name)!r}")
            return "POST"
        return raw

    def verb(self, el: ET.Element, *, in_gather: bool = False) -> Verb | None:
        tag = el.tag
        if tag not in _ALLOWED or tag in {"Number", "Client", "Queue", "Stream", "Parameter"}:
            self.warn(12200, f"Invalid element '{tag}' in <Response>")
            return None
        a = self.attrs(el)
        text = (el.text or "").strip()
        if tag == "Say":
            if not text and not len(el):
                self.warn(13520, "empty <Say>")
            spoken = "".join(el.itertext()).strip()
            return Say(
                text=" ".join(spoken.split()),
                voice=a.get("voice", ""),
                language=a.get("language", "en-US"),
                loop=self.int_attr(a, "loop", 1, 13510),
            )
        if tag == "Play":
            return Play(
                url=text, loop=self.int_attr(a, "loop", 1, 13410), digits=a.get("digits", "")
            )
        if tag == "Pause":
            return Pause(length=self.int_attr(a, "length", 1, 13910))
        if tag == "Gather":
            return self.gather(el, a)
        if tag == "Redirect":
            return Redirect(url=text, method=self.method(a, code=13710))
        if tag == "Enqueue":
            return Enqueue(
                name=text,
                action=a.get("action"),
                method=self.method(a),
                wait_url=a.get("waitUrl"),
                wait_url_method=self.method(a, "waitUrlMethod", 14206),
            )
        if tag == "Leave":
            return Leave()
        if tag == "Dial":
            return self.dial(el, a, text)
        if tag == "Record":
            return Record(
                action=a.get("action"),
                method=self.method(a),
                timeout=self.int_attr(a, "timeout", 5, 13611),
                max_length=self.int_attr(a, "maxLength", 3600, 13612, minimum=1),
                finish_on_key=a.get("finishOnKey", "1234567890*#"),
                play_beep=a.get("playBeep", "true").lower() != "false",
            )
        if tag == "Hangup":
            return Hangup()
        if tag == "Reject":
            return Reject(reason=a.get("reason", "rejected"))
        if tag == "Connect":
            return Connect(
                stream=self.stream_child(el), action=a.get("action"), method=self.method(a)
            )
        if tag == "Start":
            return Start(stream=self.stream_child(el))
        if tag == "Stop":
            child = el.find("Stream")
            return Stop(stream_name=None if child is None else child.attrib.get("name"))
        self.warn(12200, f"Invalid element '{tag}' in <Response>")
        return None

    def gather(self, el: ET.Element, a: dict[str, str]) -> Gather:
        finish = a.get("finishOnKey", "#")
        if finish and (len(finish) > 1 or finish not in _DTMF_KEYS):
            self.warn(13310, f"finishOnKey={finish!r}")
            finish = "#"
        num_digits: int | None = None
        if "numDigits" in a:
            num_digits = self.int_attr(a, "numDigits", 0, 13314, minimum=1) or None
        aoer_raw = a.get("actionOnEmptyResult", "false").lower()
        if aoer_raw not in {"true", "false"}:
            self.warn(13338, f"actionOnEmptyResult={a.get('actionOnEmptyResult')!r}")
        prompts: list[Say | Play | Pause] = []
        for child in el:
            if child.tag not in _GATHER_NESTABLE:
                self.warn(13320, f"<{child.tag}> is not allowed in <Gather>")
                continue
            verb = self.verb(child, in_gather=True)
            if isinstance(verb, Say | Play | Pause):
                prompts.append(verb)
        return Gather(
            action=a.get("action"),
            method=self.method(a),
            timeout=self.int_attr(a, "timeout", 5, 13313, minimum=1),
            num_digits=num_digits,
            finish_on_key=finish,
            input=a.get("input", "dtmf"),
            action_on_empty_result=aoer_raw == "true",
            language=a.get("language", "en-US"),
            prompts=tuple(prompts),
        )

    def dial(self, el: ET.Element, a: dict[str, str], text: str) -> Dial:
        targets: list[DialTarget] = []
        if text:
            targets.append(DialNumber(number=text))
        for child in el:
            ca = self.attrs(child)
            ctext = (child.text or "").strip()
            events = tuple(ca.get("statusCallbackEvent", "completed").replace(",", " ").split())
            if child.tag == "Number":
                targets.append(
                    DialNumber(
                        number=ctext,
                        url=ca.get("url"),
                        method=self.method(ca),
                        status_callback=ca.get("statusCallback"),
                        status_callback_event=events,
                    )
                )
            elif child.tag == "Client":
                identity_el = child.find("Identity")
                identity = (
                    (identity_el.text or "").strip() if identity_el is not None else ctext
                )
                targets.append(
                    DialClient(
                        identity=identity,
                        url=ca.get("url"),
                        method=self.method(ca),
                        status_callback=ca.get("statusCallback"),
                        status_callback_event=events,
                    )
                )
            elif child.tag == "Queue":
                targets.append(DialQueue(name=ctext, url=ca.get("url"), method=self.method(ca)))
            else:
                self.warn(12200, f"Invalid element '{child.tag}' in <Dial>")
        return Dial(
            targets=tuple(targets),
            action=a.get("action"),
            method=self.method(a),
            timeout=self.int_attr(a, "timeout", 30, 13212, minimum=1),
            caller_id=a.get("callerId"),
            time_limit=self.int_attr(a, "timeLimit", 14400, 12200, minimum=1),
        )

    def stream_child(self, el: ET.Element) -> Stream | None:
        child = el.find("Stream")
        for other in el:
            if other.tag != "Stream":
                self.warn(12200, f"Invalid element '{other.tag}' in <{el.tag}>")
        if child is None:
            self.warn(12200, f"<{el.tag}> without <Stream>")
            return None
        a = self.attrs(child)
        params: list[tuple[str, str]] = []
        for p in child:
            if p.tag != "Parameter":
                self.warn(12200, f"Invalid element '{p.tag}' in <Stream>")
                continue
            pa = self.attrs(p)
            params.append((pa.get("name", ""), pa.get("value", "")))
        return Stream(
            url=a.get("url", ""),
            name=a.get("name", ""),
            track=a.get("track", "inbound_track"),
            parameters=tuple(params),
            status_callback=a.get("statusCallback"),
        )


def parse_twiml(text: str) -> Document:
    """Parse a TwiML voice document; raise TwimlError(12100) if Twilio could not."""
    try:
        root = ET.fromstring(text.encode("utf-8") if isinstance(text, str) else text)
    except ET.ParseError as exc:
        raise TwimlError(12100, str(exc)) from None
    if root.tag != "Response":
        raise TwimlError(12100, f"root element is <{root.tag}>, not <Response>")
    parser = _Parser()
    parser.attrs(root)
    verbs: list[Verb] = []
    for el in root:
        verb = parser.verb(el)
        if verb is not None:
            verbs.append(verb)
    return Document(verbs=tuple(verbs), warnings=tuple(parser.warnings))
