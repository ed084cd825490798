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

    def call_ended(self, call_sid: str) -> str:
        """How the call ended, set once by the first final status callback; TTL 2 days."""
        return f"{self.prefix}call:{{{call_sid}}}:ended"

    def auth_failures(self, reference: str) -> str:
        """Failed PIN checks for one account reference; expires AUTH_LOCK_S after the first."""
        return f"{self.prefix}auth:fail:{reference}"

    def call_outcomes(self, day: str) -> str:
        """Hash outcome -> count of calls that ended that day (YYYY-MM-DD); kept 400 days."""
        return f"{self.prefix}outcomes:{day}"

    def care_tasks(self) -> str:
        """Stream of care-team tasks (voice messages); capped with MAXLEN ~ 100000."""
        return f"{self.prefix}care:tasks"

    # --- queueing -----------------------------------------------------------------------
    # One hash tag per routing group ("<prefix>{<prefix>rt:<group>}"): every key a routing
    # script touches sits in one slot, so pairing across queues that share agents stays
    # atomic on Redis Cluster (queueing/store.py explains why per group, not per queue).
    def route_tag(self, group: str) -> str:
        """The start of every routing key of `group`: the prefix, then the shared hash tag."""
        return f"{self.prefix}{{{self.prefix}rt:{group}}}"

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

    def route_recent_handle(self, group: str, queue: str) -> str:
        """List of the queue's latest handle times (talk + wrap, ms), newest first; max 100."""
        return f"{self.route_tag(group)}:q:{queue}:aht"

    def route_stats(self, group: str, queue: str, interval: int) -> str:
        """Hash of counters for one queue (or "_centre") in 15-minute interval number
        `interval` (Unix seconds // 900); TTL 8 days from the interval's first event."""
        return f"{self.route_tag(group)}:stats:{queue}:{interval}"

    # --- callbacks ----------------------------------------------------------------------
    # All callbacks keys share the hash tag {cb}: every script touches several of them, and the
    # scheduler's throughput is bounded by the carrier's calls per second, not by one slot.
    def cb_due(self) -> str:
        """Sorted set job id -> due time (epoch ms) of scheduled and retry-scheduled jobs.
        Bounded by calling.limits.max_jobs (live jobs); no TTL."""
        return f"{self.prefix}{{cb}}:due"

    def cb_leases(self) -> str:
        """Sorted set job id -> lease expiry (epoch ms) of dialling jobs, and -> final-status
        deadline of in-progress calls; at most max_jobs members; no TTL."""
        return f"{self.prefix}{{cb}}:leases"

    def cb_job(self, job_id: str) -> str:
        """Hash: one job's fields, including its dial idempotency mark ('pending:<lease>'
        written with the claim, before the dial; the CallSid after it); no TTL while live,
        calling.limits.retention once finished."""
        return f"{self.prefix}{{cb}}:job:{job_id}"

    def cb_history(self, job_id: str) -> str:
        """List of JSON state transitions of one job, capped at 50; same TTL as the job."""
        return f"{self.prefix}{{cb}}:job:{job_id}:hist"

    def cb_attempts(self, job_id: str) -> str:
        """List of JSON dial attempts of one job (at most max_attempts, <= 10); same TTL."""
        return f"{self.prefix}{{cb}}:job:{job_id}:att"

    def cb_call(self, call_sid: str) -> str:
        """String: the job id an outbound CallSid belongs to (status callbacks); TTL 7 days."""
        return f"{self.prefix}{{cb}}:call:{call_sid}"

    def cb_early(self, call_sid: str) -> str:
        """JSON of a final call status that arrived before the dial was recorded (the
        carrier can be faster than our bookkeeping); read once by the recording; TTL 1 h."""
        return f"{self.prefix}{{cb}}:early:{call_sid}"

    def cb_index(self) -> str:
        """Sorted set job id -> created time (epoch ms), for listing; members older than the
        retention are trimmed on each insert."""
        return f"{self.prefix}{{cb}}:index"

    def cb_live(self) -> str:
        """String counter of live (not finished) jobs, checked against max_jobs; no TTL."""
        return f"{self.prefix}{{cb}}:live"

    def cb_dnc(self) -> str:
        """Set of E.164 numbers never to be dialled; at most 1,000,000 members (adds beyond
        are refused); no TTL."""
        return f"{self.prefix}{{cb}}:dnc"

    def cb_rate(self) -> str:
        """Hash {tokens, ts}: the outbound token bucket shared by all workers; TTL 60 s."""
        return f"{self.prefix}{{cb}}:rate"

    def cb_survey(self, call_sid: str) -> str:
        """Hash: one survey's answers, keyed by the surveyed call; TTL 400 days."""
        return f"{self.prefix}{{cb}}:survey:{call_sid}"

    def cb_survey_index(self) -> str:
        """Sorted set surveyed CallSid -> answered time (epoch ms); trimmed to 400 days."""
        return f"{self.prefix}{{cb}}:surveys"

    def cb_survey_stats(self, period: str) -> str:
        """Hash '<scope>:<name>:<n|sum|happy|solved|unsolved>' -> count for a day
        (YYYY-MM-DD) or month (YYYY-MM); scope is all, queue or agent. TTL 400 days."""
        return f"{self.prefix}{{cb}}:sstats:{period}"

    def cb_case(self, case_id: str) -> str:
        """Hash: one care case (poor survey, unsolved problem, complaint); TTL 400 days
        once closed, none while open."""
        return f"{self.prefix}{{cb}}:case:{case_id}"

    def cb_cases_open(self) -> str:
        """Sorted set open case id -> response deadline (epoch ms); bounded by max_jobs."""
        return f"{self.prefix}{{cb}}:cases:open"

    def cb_carrier_calls(self) -> str:
        """Hash attempt key -> CallSid kept by the recording dialer (the carrier's stand-in in
        tests and the bench, never in production); no TTL (tests remove their prefix)."""
        return f"{self.prefix}{{cb}}:carrier:calls"

    def cb_carrier_log(self) -> str:
        """List of JSON dials made by the recording dialer (tests and bench only)."""
        return f"{self.prefix}{{cb}}:carrier:log"

    def cb_cases_index(self) -> str:
        """Sorted set case id -> opened time (epoch ms); trimmed to 400 days."""
        return f"{self.prefix}{{cb}}:cases"

    # --- supervisors (queueing/supervisor_*.py, hotline/report.py) -----------------------
    def sup_session(self, session_hash: str) -> str:
        """JSON {user, role, csrf, created_ms} of one signed-in supervisor, keyed by the
        SHA-256 of the cookie value (a dump of Redis holds no usable cookie); TTL
        users.yaml sessions.ttl_s."""
        return f"{self.prefix}sup:session:{session_hash}"

    def sup_signin_client(self, client: str) -> str:
        """Counter of sign-in attempts from one client address; TTL signin_limits.window_s."""
        return f"{self.prefix}sup:signin:client:{client}"

    def sup_signin_user(self, user: str) -> str:
        """Counter of failed sign-ins for one user name; TTL signin_limits.window_s."""
        return f"{self.prefix}sup:signin:user:{user}"

    def sup_sampler_lease(self) -> str:
        """String: the token of the one process whose broadcaster takes the day chart's
        samples and the daily roll-up while nobody watches a stream (redis-py's Lock); TTL
        `supervisor_api.SAMPLER_LEASE_S`, renewed by its holder on each sample."""
        return f"{self.prefix}sup:sampler"

    def sup_samples(self, day: str) -> str:
        """Hash minute-of-day -> JSON {waiting, service_level} sampled by the wallboard's
        broadcaster for the day chart (UTC day YYYY-MM-DD); at most 1,440 fields; TTL 2 days."""
        return f"{self.prefix}sup:samples:{day}"

    def sup_daily(self, group: str, day: str) -> str:
        """Hash '<queue>:<counter>' -> value: the day's sum of the 15-minute routing counters
        (route_stats), rolled up for the monthly report; TTL statistics.retention_days."""
        return f"{self.prefix}sup:daily:{group}:{day}"

    def sup_wait_hist(self, group: str, day: str) -> str:
        """Hash '<queue>:<answered|abandoned>:<le>' -> count of queue waits ending that day
        (UTC), plus ':count' and ':sum_ms'; shares the routing hash tag (one script reads
        route_done); TTL statistics.retention_days."""
        return f"{self.route_tag(group)}:sup:waits:{day}"

    def sup_wait_checkpoint(self, group: str) -> str:
        """String: end time (ms) of the last ended call counted into sup_wait_hist; no TTL."""
        return f"{self.route_tag(group)}:sup:waits:cp"

    # --- speech -------------------------------------------------------------------------
