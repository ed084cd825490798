"""What a call sounded like, step by step, as JSON-serialisable values."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Heard:
    """Something the party heard: a Say (text + language), a Play (url + ms), the audio a
    Media Stream played (ms), or a system message."""

    kind: str  # say | play | stream | system | tone
    text: str = ""
    language: str = ""
    url: str = ""
    ms: int = 0


@dataclass
class Step:
    """One TwiML document the call ran: where it came from, its verbs, what was heard and
    the input the caller gave (digits, 'timeout', a recording, stream inputs...)."""

    node: str
    verbs: list[str] = field(default_factory=list)
    heard: list[Heard] = field(default_factory=list)
    input: list[str] = field(default_factory=list)
    method: str = "POST"


@dataclass
class Outcome:
    """How the call ended.

    queued: it entered an <Enqueue>. answered_by: the agent phone (number or
    client:name) that took it, or AnsweredBy for an outbound call with MachineDetection.
    abandoned: the caller hung up while queued. duration_s: emulated seconds from answer
    to hang-up. hangup_reason: caller-hangup, hangup-verb, end-of-twiml, rest-completed,
    rest-canceled, application-error, rejected:<reason>, busy, no-answer, failed (an
    outbound call not answered), emulator-closed, timeout (the CLI gave up).
    final_status: the CallStatus it ended with."""

    queued: bool = False
    answered_by: str | None = None
    abandoned: bool = False
    hangup_reason: str | None = None
    duration_s: float = 0.0
    final_status: str | None = None


@dataclass
class Transcript:
    call_sid: str
    direction: str
    from_: str
    to: str
    steps: list[Step] = field(default_factory=list)
    outcome: Outcome = field(default_factory=Outcome)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "call_sid": self.call_sid,
            "direction": self.direction,
            "from": self.from_,
            "to": self.to,
            "steps": [asdict(s) for s in self.steps],
            "outcome": asdict(self.outcome),
            "errors": list(self.errors),
        }

    def heard_text(self) -> list[str]:
        """Every Say the party heard, in order (handy in assertions)."""
        return [h.text for s in self.steps for h in s.heard if h.kind in {"say", "system"}]
