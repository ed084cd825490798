"""Agent states and the one transition table.

The table below is the only place transitions are defined: `queueing/store.py` renders it
into the Lua prelude shared by every routing script, so Redis refuses exactly the same
transitions that `can_transition` refuses in Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum


class AgentState(str, Enum):
    OFFLINE = "offline"
    READY = "ready"
    RESERVED = "reserved"  # a call is ringing (or about to ring) at the agent
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"  # timed; ends by itself after the queue's wrap_up_s
    NOT_READY = "not_ready"  # with a reason


S = AgentState

TRANSITIONS: Mapping[AgentState, frozenset[AgentState]] = {
    S.OFFLINE: frozenset({S.READY, S.NOT_READY}),  # log in
    S.READY: frozenset({S.RESERVED, S.NOT_READY, S.OFFLINE}),
    # answered / no answer or lease expired / caller hung up while ringing
    S.RESERVED: frozenset({S.ON_CALL, S.NOT_READY, S.READY}),
    S.ON_CALL: frozenset({S.WRAP_UP, S.READY}),  # READY when the queue has no wrap-up
    S.WRAP_UP: frozenset({S.READY, S.NOT_READY, S.OFFLINE}),
    S.NOT_READY: frozenset({S.READY, S.NOT_READY, S.OFFLINE}),  # NOT_READY: change reason
}

# States in which an agent is staffed and working a call (occupancy numerator).
BUSY = frozenset({S.RESERVED, S.ON_CALL, S.WRAP_UP})
# States counted as staffed for occupancy (numerator plus available time).
AVAILABLE_OR_BUSY = BUSY | {S.READY}


def can_transition(current: AgentState, new: AgentState) -> bool:
    return new in TRANSITIONS[current]


def lua_transition_table() -> str:
    """The table as a Lua constructor: T['ready']['reserved'] == true."""
    rows = []
    for state in AgentState:
        targets = ", ".join(f"{t.value} = true" for t in sorted(TRANSITIONS[state]))
        rows.append(f"  {state.value} = {{ {targets} }}")
    return "local TRANSITIONS = {\n" + ",\n".join(rows) + "\n}\n"
