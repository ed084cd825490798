"""Every Redis key the service uses, in one place.

All keys start with the configured prefix. Keys that a multi-key script touches together
share one hash tag (`{...}`) so the script runs unchanged on Redis Cluster. Each helper
says what the key holds and how long it lives. No code builds key names elsewhere, and no
code lists keys with KEYS: index sets or SCAN only.
"""

from __future__ import annotations

from dataclasses import dataclass

LAYOUT_VERSION = 1


@dataclass(frozen=True)
class Keys:
    prefix: str = "hl:"

    # --- ivr: call sessions -------------------------------------------------------------
    def call_session(self, call_sid: str) -> str:
        """JSON of the call's IVR session; TTL Settings.session_ttl_s, refreshed per step."""
        return f"{self.prefix}call:{{{call_sid}}}"

    def call_responses(self, call_sid: str) -> str:
        """Hash seq -> TwiML already answered for this call (Twilio retries); same TTL."""
        return f"{self.prefix}call:{{{call_sid}}}:resp"

    def call_outcomes(self, day: str) -> str:
        """Hash outcome -> count of calls that ended that day (YYYY-MM-DD); kept 400 days."""
        return f"{self.prefix}outcomes:{day}"

    def care_tasks(self) -> str:
        """Stream of care-team tasks (voice messages); capped with MAXLEN ~ 100000."""
        return f"{self.prefix}care:tasks"

    # --- queueing -----------------------------------------------------------------------
    # One hash tag per routing group ("{<prefix>rt:<group>}"): every key a routing script
    # touches sits in one slot, so pairing across queues that share agents stays atomic on
    # Redis Cluster (see queueing/store.py for why the tag is per group, not per queue).
    def route_tag(self, group: str) -> str:
        """The hash tag shared by all routing keys of `group`."""
        return f"{{{self.prefix}rt:{group}}}"

    def route_agents(self, group: str) -> str:
        """Hash agent id -> JSON agent state; no TTL, one field per configured agent."""
        return f"{self.route_tag(group)}:agents"

    def route_calls(self, group: str) -> str:
        """Hash CallSid -> JSON of a call waiting, reserved or connected; removed when it ends."""
        return f"{self.route_tag(group)}:calls"

    def route_done(self, group: str) -> str:
        """Hash CallSid -> JSON outcome of ended calls; trimmed by the sweeper after 1 hour."""
        return f"{self.route_tag(group)}:done"

    def route_done_index(self, group: str) -> str:
        """Sorted set CallSid -> end time (ms) indexing route_done for trimming."""
        return f"{self.route_tag(group)}:done:idx"

    def route_waiting(self, group: str, queue: str) -> str:
        """Sorted set CallSid -> (9 - priority) * 1e13 + join ms: the queue's order; no TTL."""
        return f"{self.route_tag(group)}:q:{queue}:wait"

    def route_ready(self, group: str, queue: str) -> str:
        """Sorted set agent id -> strategy score of ready agents eligible for the queue."""
        return f"{self.route_tag(group)}:q:{queue}:ready"

    def route_leases(self, group: str) -> str:
        """Sorted set CallSid -> reservation lease expiry (ms, Redis clock)."""
        return f"{self.route_tag(group)}:leases"

    def route_wrapups(self, group: str) -> str:
        """Sorted set agent id -> end of timed wrap-up (ms, Redis clock)."""
        return f"{self.route_tag(group)}:wrap"

    def route_seq(self, group: str) -> str:
        """Counter: reservation ids and event sequence numbers; never expires."""
        return f"{self.route_tag(group)}:seq"

    def route_abandoned(self, group: str) -> str:
        """List of JSON abandoned callers, newest first, capped (routing.abandoned_list_max)."""
        return f"{self.route_tag(group)}:abandoned"

    def route_stats(self, group: str, queue: str, interval: int) -> str:
        """Hash of counters for one queue (or "_centre") in 15-minute interval number
        `interval` (Unix seconds // 900); TTL 8 days from the interval's first event."""
        return f"{self.route_tag(group)}:stats:{queue}:{interval}"

    # --- callbacks ----------------------------------------------------------------------

    # --- speech -------------------------------------------------------------------------
