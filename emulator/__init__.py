"""Hotline's carrier emulator: a faithful, in-process stand-in for Twilio Voice.

It imports nothing of the project's own packages. See `emulator.emulator.CarrierEmulator`
(the entry point), `emulator.parties` (scripted callers, agent phones, customers),
`emulator.rest` (Twilio's REST paths, and how to point the twilio client at them) and
`emulator.cli` (the `hotline call` command).
"""

from emulator.calls import Call
from emulator.emulator import CarrierEmulator
from emulator.parties import (
    AgentLeg,
    AgentPhone,
    CallerScript,
    CustomerPhone,
    Duration,
    Keys,
    Speak,
    parse_agent,
    sample,
)
from emulator.signing import SIGNATURE_HEADER, compute_signature, is_valid_signature
from emulator.state import CallStatus
from emulator.transcript import Heard, Outcome, Step, Transcript

__all__ = [
    "SIGNATURE_HEADER",
    "AgentLeg",
    "AgentPhone",
    "Call",
    "CallStatus",
    "CallerScript",
    "CarrierEmulator",
    "CustomerPhone",
    "Duration",
    "Heard",
    "Keys",
    "Outcome",
    "Speak",
    "Step",
    "Transcript",
    "compute_signature",
    "is_valid_signature",
    "parse_agent",
    "sample",
]
