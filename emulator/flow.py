"""Values passed between a call's supervisor and its TwiML interpreter."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fetch:
    """Request a document from the service (a webhook)."""

    url: str
    method: str = "POST"
    params: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Inline:
    """Run TwiML given directly (REST `Twiml`)."""

    twiml: str
    base_url: str | None = None


Next = Fetch | Inline


@dataclass(frozen=True)
class End:
    """The call is over (the interpreter decided): why."""

    reason: str


@dataclass(frozen=True)
class Interrupt:
    """Something outside the running TwiML ended or redirected it."""

    kind: str  # "redirect" | "hangup"
    reason: str = ""
    next: Next | None = None
    abandoned: bool = False
    cancel: bool = False
