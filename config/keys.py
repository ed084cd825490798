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

    # --- callbacks ----------------------------------------------------------------------

    # --- speech -------------------------------------------------------------------------
