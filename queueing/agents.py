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

# States an agent cannot leave by its own request (API: ready, not_ready, logout, end
# wrap-up): only the call's events (answer, no answer, hang-up, lease expiry) move it on.
# Without this an agent going "not ready" while its phone rings would drop the reservation
# and could be paired with a second call.
LOCKED = frozenset({S.RESERVED, S.ON_CALL})

# States in which an agent is staffed and working a call (occupancy numerator).
BUSY = frozenset({S.RESERVED, S.ON_CALL, S.WRAP_UP})
# States counted as staffed for occupancy (numerator plus available time).
AVAILABLE_OR_BUSY = BUSY | {S.READY}


def can_transition(current: AgentState, new: AgentState) -> bool:
    return new in TRANSITIONS[current]


def can_request(current: AgentState, new: AgentState) -> bool:
    """Whether the agent (or a supervisor) may ask for this transition."""
    return current not in LOCKED and can_transition(current, new)


def lua_transition_table() -> str:
    """The table as Lua: TRANSITIONS['ready']['reserved'] == true, LOCKED['on_call']."""
    rows = []
    for state in AgentState:
        targets = ", ".join(f"{t.value} = true" for t in sorted(TRANSITIONS[state]))
        rows.append(f"  {state.value} = {{ {targets} }}")
    locked = ", ".join(f"{s.value} = true" for s in sorted(LOCKED))
    return (
        "local TRANSITIONS = {\n"
        + ",\n".join(rows)
        + "\n}\n"
        + f"local LOCKED = {{ {locked} }}\n"
    )
