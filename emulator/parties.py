"""Who is on the far end of each call: emulated callers, agent phones and customers.

Every duration is a `Duration`: a number of emulated seconds, or a zero-argument callable
that samples one (e.g. ``functools.partial(rng.expovariate, 1 / 180)`` with a seeded
`random.Random`), so a simulator can draw handle times, patience and ring delays from
distributions. `None` means "never" where it is allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

Duration = float | int | Callable[[], float]


def sample(duration: Duration | None) -> float | None:
    """Draw one value (emulated seconds) from a Duration; None stays None."""
    if duration is None:
        return None
    value = duration() if callable(duration) else duration
    return max(0.0, float(value))


@dataclass(frozen=True)
class Speak:
    """Caller audio on a Media Stream: a WAV file (any rate/width; resampled, mu-law)."""

    wav: Path


@dataclass(frozen=True)
class Keys:
    """Keypad presses on a Media Stream, sent as `dtmf` events, one per digit."""

    digits: str


StreamInput = Speak | Keys


@dataclass(frozen=True)
class CallerScript:
    """What an emulated caller (or answered customer) does.

    presses: one entry per <Gather>, in order: the keys pressed ("12#", "1"); None or ""
        lets that Gather time out. When the list runs out, every further Gather times out.
    stream_inputs: turns on Media Streams, in order: Speak(wav) or Keys(digits); each is
        given once the server's playback has finished (or after `stream_wait` seconds
        with nothing played).
    hangup_after: hang up this many seconds after the call is answered (None: never).
    patience: hang up after this long waiting in an <Enqueue> queue (an abandon).
    record_seconds: how long the caller speaks into a <Record>; 0 records nothing.
    talk_time: when this party is bridged by a <Dial><Queue>, how long it talks.
    stream_reply_wait: after a turn, give the next one anyway if the service has said
        nothing for this long (a caller who repeats themselves).
    stream_idle_hangup: hang up when a stream has nothing left to say and hears nothing
        for this long (keeps a silent service from holding the caller forever).
    """

    presses: tuple[str | None, ...] = ()
    stream_inputs: tuple[StreamInput, ...] = ()
    hangup_after: Duration | None = None
    patience: Duration | None = None
    record_seconds: Duration = 3.0
    talk_time: Duration | None = 60.0
    stream_wait: float = 2.0
    stream_reply_wait: float = 10.0
    stream_idle_hangup: float = 30.0
    press_seconds: float = 0.3

    @classmethod
    def of(
        cls,
        presses: Sequence[str | None] = (),
        say: Sequence[str | Path] = (),
        *,
        hangup_after: Duration | None = None,
        patience: Duration | None = None,
        record_seconds: Duration = 3.0,
        talk_time: Duration | None = 60.0,
    ) -> CallerScript:
        """Convenience: keypad entries for Gathers, and WAV files to speak on streams."""
        return cls(
            presses=tuple(presses),
            stream_inputs=tuple(Speak(Path(p)) for p in say),
            hangup_after=hangup_after,
            patience=patience,
            record_seconds=record_seconds,
            talk_time=talk_time,
        )


@dataclass
class AgentLeg:
    """One ring of an agent phone, for assertions and statistics."""

    call_sid: str
    parent_call_sid: str | None
    outcome: str  # ringing, answered, no-answer, busy, canceled, whisper-hangup
    whisper: list[str] = field(default_factory=list)
    talk_s: float = 0.0


@dataclass
class AgentPhone:
    """An emulated agent's phone, reached by <Dial><Number> or <Dial><Client>.

    answer_after: ring this long, then answer (None: never answers; the Dial times out).
    busy: the line answers busy.
    handle_time: talk this long once bridged, then hang up.
    max_calls: concurrent calls before the phone returns busy.
    whisper_keys: what the agent presses at a <Gather> in the whisper (e.g. "1" to
        accept a screened call); None lets it time out.
    """

    number: str | None = None
    client: str | None = None
    answer_after: Duration | None = 1.0
    busy: bool = False
    handle_time: Duration = 30.0
    max_calls: int = 1
    whisper_keys: str | None = None
    legs: list[AgentLeg] = field(default_factory=list)
    active: int = 0

    @property
    def address(self) -> str:
        return self.number or f"client:{self.client}"


@dataclass
class CustomerPhone:
    """The far end of an outbound (REST-created) call.

    answer: "human", "machine" (an answering machine: AnsweredBy machine_start or
        machine_end_beep with MachineDetection), "fax", "busy", "no-answer" or "failed".
    answer_after: seconds of ringing before answering.
    script: what the customer does once answered (keypad answers to a survey, etc.).
    """

    answer: str = "human"
    answer_after: Duration = 1.0
    script: CallerScript = field(default_factory=CallerScript)


def parse_agent(spec: str) -> AgentPhone:
    """NUMBER_OR_client:NAME[:ANSWER_AFTER_S[:HANDLE_TIME_S]] ('never' never answers)."""
    if spec.startswith("client:"):
        rest = spec[len("client:") :].split(":")
        phone = AgentPhone(client=rest[0])
    else:
        rest = spec.split(":")
        phone = AgentPhone(number=rest[0])
    if len(rest) > 1:
        phone.answer_after = None if rest[1] == "never" else float(rest[1])
    if len(rest) > 2:
        phone.handle_time = float(rest[2])
    return phone
