"""Twilio error codes the emulator records, and its debugger log.

Codes and wording follow Twilio's Error and Warning Dictionary
(https://www.twilio.com/docs/api/errors). Entries land in `CarrierEmulator.errors`, the
way Twilio's debugger shows them; REST failures use the JSON body Twilio's REST API
returns: ``{"code", "message", "more_info", "status"}``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Level(str, enum.Enum):
    ERROR = "ERROR"
    WARNING = "WARNING"


# code -> (level, title as in Twilio's dictionary)
CODES: dict[int, tuple[Level, str]] = {
    11100: (Level.ERROR, "Invalid URL format"),
    11200: (Level.ERROR, "HTTP retrieval failure"),
    11205: (Level.ERROR, "HTTP connection failure"),
    12100: (Level.ERROR, "Document parse failure"),
    12200: (Level.WARNING, "Schema validation warning"),
    12300: (Level.ERROR, "Invalid Content-Type"),
    13212: (Level.WARNING, "Dial: Invalid timeout value"),
    13223: (Level.ERROR, "Dial: Invalid phone number format"),
    13310: (Level.WARNING, "Gather: Invalid finishOnKey value"),
    13313: (Level.WARNING, "Gather: Invalid timeout value"),
    13314: (Level.WARNING, "Gather: Invalid numDigits value"),
    13320: (Level.WARNING, "Gather: Invalid nested verb"),
    13325: (Level.ERROR, "Gather->Play: Invalid Content-Type"),
    13338: (Level.ERROR, "Gather: Invalid actionOnEmptyResult value"),
    13410: (Level.WARNING, "Play: Invalid loop value"),
    13420: (Level.ERROR, "Play: Invalid Content-Type"),
    13510: (Level.WARNING, "Say: Invalid loop value"),
    13520: (Level.ERROR, "Say: Invalid text"),
    13611: (Level.WARNING, "Record: Invalid timeout value"),
    13612: (Level.WARNING, "Record: Invalid maxLength value"),
    13710: (Level.WARNING, "Redirect: Invalid method value"),
    13910: (Level.WARNING, "Pause: Invalid length value"),
    14206: (Level.ERROR, "Enqueue: Invalid waitUrlMethod value"),
    20001: (Level.ERROR, "Invalid parameter"),
    20003: (Level.ERROR, "Authentication Error - invalid username"),
    20404: (Level.ERROR, "The requested resource was not found"),
    21201: (Level.ERROR, "No 'To' number is specified"),
    21205: (Level.ERROR, "Url parameter is not a valid URL"),
    21208: (Level.ERROR, "Invalid Timeout"),
    21213: (Level.ERROR, "No 'From' number is specified"),
    21218: (Level.ERROR, "Invalid ApiVersion / Status"),
    21220: (Level.ERROR, "Invalid call state"),
    31920: (Level.ERROR, "Stream - WebSocket - Handshake Error"),
    31921: (Level.ERROR, "Stream - WebSocket - Close Error"),
}

APPLICATION_ERROR_SPEECH = "We are sorry, an application error has occurred. Goodbye."


def more_info(code: int) -> str:
    return f"https://www.twilio.com/docs/errors/{code}"


@dataclass(frozen=True)
class DebuggerEntry:
    """One line of the emulator's debugger (what Twilio's console shows for a call)."""

    code: int
    level: Level
    message: str
    call_sid: str | None = None
    url: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "level": self.level.value,
            "message": self.message,
            "call_sid": self.call_sid,
            "url": self.url,
            "detail": self.detail,
            "more_info": more_info(self.code),
        }


def entry(
    code: int, *, call_sid: str | None = None, url: str | None = None, detail: str = ""
) -> DebuggerEntry:
    level, title = CODES.get(code, (Level.ERROR, "Unknown error"))
    return DebuggerEntry(code, level, title, call_sid=call_sid, url=url, detail=detail)


@dataclass(eq=False)
class TwimlError(Exception):
    """A document Twilio could not fetch, parse or accept, with the code it records."""

    code: int
    detail: str = ""
    warnings: tuple[DebuggerEntry, ...] = field(default=())

    def __str__(self) -> str:
        return f"{self.code}: {CODES.get(self.code, (Level.ERROR, ''))[1]} {self.detail}".strip()


@dataclass(eq=False)
class RestError(Exception):
    """An error answered by the REST API, with Twilio's JSON body."""

    status: int
    code: int
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": more_info(self.code),
            "status": self.status,
        }
