"""Queues, agents and routing rules from `queues.yaml`: parsing, validation, pure helpers.

Every problem is collected as a `ConfigIssue` naming file, line and field, and all of them
are raised together as one `ConfigError`, so a bad file is fixed in one pass.

Routing rules expressed here (the Lua router in `queueing/` enforces them):
- an agent is *eligible* for a queue when it has every skill the queue requires at the
  required level or above and, if the queue names a `team`, belongs to that team;
- a call's priority is the highest of the queue's base priority and the priority of every
  rule whose `when` attributes all match the call's attributes (for example a VIP segment
  from the account backend, or the IVR's reason `lost_card`);
- `overflow_after_s` + `overflow_to`: once a call has waited that long, the ready agents
  of the target queue may take it too. The call keeps its place, its join time and its
  own queue's statistics (a virtual overflow). The VIP rule is this mechanism: the `vip`
  queue is served by the care team first and by the general pool after N seconds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from config.calendar import Calendar
from config.errors import ConfigError, ConfigIssue
from config.yamlload import (
    FieldReader,
    LocatedList,
    LocatedMap,
    line_of,
    load_yaml_file,
    load_yaml_text,
)

STRATEGIES = ("longest_idle", "fewest_calls", "skill_level")
MAX_PRIORITY = 9
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_CLIENT = re.compile(r"^client:[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class PriorityRule:
    when: Mapping[str, str]
    priority: int

    def matches(self, attributes: Mapping[str, str]) -> bool:
        return all(attributes.get(k) == v for k, v in self.when.items())


@dataclass(frozen=True)
class QueueDef:
    name: str
    calendar: str
    skills: Mapping[str, int] = field(default_factory=dict)  # skill -> minimum level
    team: str | None = None  # only agents of this team are eligible (VIP care team)
    target_answer_s: float = 30.0
    service_level_goal: float = 0.8
    priority: int = 0  # base priority 0..9; higher is served first
    priority_rules: tuple[PriorityRule, ...] = ()
    overflow_after_s: float | None = None  # max wait before `overflow_to` agents may serve
    overflow_to: str | None = None
    callback_offer_s: float | None = None  # offer a callback when EWT exceeds this
    announce_every_s: float = 30.0
    hold_music_url: str | None = None
    short_abandon_s: float = 5.0
    wrap_up_s: float = 10.0
    strategy: str = "longest_idle"
    # capacity: at most this many calls waiting; a new caller beyond it gets the busy
    # message (checked atomically in join.lua). None: no limit. Callbacks that keep their
    # place and calls already queued are never refused.
    max_waiting: int | None = None

    def priority_for(self, attributes: Mapping[str, str]) -> int:
        """The call's priority: the highest of the base and every matching rule."""
        best = self.priority
        for rule in self.priority_rules:
            if rule.matches(attributes):
                best = max(best, rule.priority)
        return best

    @property
    def callback_threshold_s(self) -> float:
        return self.callback_offer_s if self.callback_offer_s is not None else self.target_answer_s


@dataclass(frozen=True)
class AgentDef:
    id: str
    name: str
    address: str  # E.164 phone number or "client:<name>"
    skills: Mapping[str, int] = field(default_factory=dict)
    team: str | None = None
    token: str = field(default="", repr=False)

    @property
    def is_client(self) -> bool:
        return self.address.startswith("client:")

    def level_for(self, queue: QueueDef) -> int | None:
        """The agent's level for `queue` (min over required skills) or None if not eligible."""
        if queue.team is not None and self.team != queue.team:
            return None
        levels: list[int] = []
        for skill, minimum in queue.skills.items():
            have = self.skills.get(skill)
            if have is None or have < minimum:
                return None
            levels.append(have)
        return min(levels) if levels else 1


@dataclass(frozen=True)
class RoutingDef:
    reserve_lease_s: float = 10.0  # pairing -> dispatcher confirmed (redirect sent)
    ring_timeout_s: float = 25.0  # dispatched -> agent answered; then the lease expires
    sweep_every_s: float = 1.0
    abandoned_list_max: int = 500


@dataclass(frozen=True)
class QueuesConfig:
    queues: Mapping[str, QueueDef]
    agents: Mapping[str, AgentDef]
    routing: RoutingDef = field(default_factory=RoutingDef)
    vip_queue: str | None = None
    default_queue: str | None = None

    def eligible(self, agent_id: str) -> dict[str, int]:
        """queue name -> the agent's level for it, for every queue the agent may serve."""
        agent = self.agents[agent_id]
        result: dict[str, int] = {}
        for queue in self.queues.values():
            level = agent.level_for(queue)
            if level is not None:
                result[queue.name] = level
        return result

    def agent_for_token(self, token: str) -> AgentDef | None:
        import hmac

        found = None
        for agent in self.agents.values():
            if agent.token and hmac.compare_digest(agent.token.encode(), token.encode()):
                found = agent
        return found

    def is_open(self, queue: str, when: datetime, calendars: Mapping[str, Calendar]) -> bool:
        return calendars[self.queues[queue].calendar].is_open(when)


_QUEUE_FIELDS = {
    "calendar",
    "skills",
    "team",
    "target_answer_s",
    "service_level_goal",
    "priority",
    "priority_rules",
    "overflow_after_s",
    "overflow_to",
    "callback_offer_s",
    "announce_every_s",
    "hold_music_url",
    "short_abandon_s",
    "wrap_up_s",
    "strategy",
    "max_waiting",
}
_AGENT_FIELDS = {"name", "phone", "client", "skills", "team", "token"}
_ROUTING_FIELDS = {"reserve_lease_s", "ring_timeout_s", "sweep_every_s", "abandoned_list_max"}


def _skills(reader: FieldReader, data: Any, where: str, *, low: int) -> dict[str, int]:
    raw = data.get("skills") if isinstance(data, dict) else None
    if raw is None:
        return {}
    if isinstance(raw, LocatedList):  # a plain list means level 1 each
        raw_map: dict[str, Any] = {}
        for index, item in enumerate(raw):
            if not isinstance(item, str) or not _NAME.match(item):
                reader.issues.append(
                    ConfigIssue(
                        reader.file,
                        line_of(raw, index),
                        f"{where}.skills[{index}]",
                        f"bad skill name {item!r}",
                    )
                )
                continue
            raw_map[item] = 1
        return raw_map
    if not isinstance(raw, LocatedMap):
        reader.error(data, "skills", where, "field 'skills' must be a mapping skill: level")
        return {}
    result: dict[str, int] = {}
    for skill, level in raw.items():
        if not _NAME.match(skill):
            reader.error(raw, skill, f"{where}.skills", f"bad skill name '{skill}'")
            continue
        if isinstance(level, bool) or not isinstance(level, int) or not low <= level <= 10:
            reader.error(
                raw, skill, f"{where}.skills.{skill}", f"skill level must be an integer {low}..10"
            )
            continue
        result[skill] = level
    return result


def _priority_rules(reader: FieldReader, data: Any, where: str) -> tuple[PriorityRule, ...]:
    raw = data.get("priority_rules") if isinstance(data, dict) else None
    if raw is None:
        return ()
    if not isinstance(raw, LocatedList):
        reader.error(data, "priority_rules", where, "field 'priority_rules' must be a list")
        return ()
    rules: list[PriorityRule] = []
    for index, item in enumerate(raw):
        item_where = f"{where}.priority_rules[{index}]"
        if not isinstance(item, LocatedMap):
            reader.issues.append(
                ConfigIssue(
                    reader.file,
                    line_of(raw, index),
                    item_where,
                    "a rule is a mapping {when, priority}",
                )
            )
            continue
        reader.unknown_fields(item, {"when", "priority"}, item_where)
        when = reader.mapping(item, "when", item_where)
        conditions: dict[str, str] = {}
        for key, value in when.items():
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                reader.error(when, key, f"{item_where}.when.{key}", "condition must be a string")
                continue
            conditions[key] = str(value)
        if not conditions and "when" in item:
            reader.error(item, "when", item_where, "field 'when' must name at least one attribute")
        priority = _int(reader, item, "priority", item_where, default=-1, low=0, high=MAX_PRIORITY)
        if "priority" not in item:
            reader.error(item, "priority", item_where, "field 'priority' is required")
        if conditions and priority >= 0:
            rules.append(PriorityRule(when=conditions, priority=priority))
    return tuple(rules)


def _int(
    reader: FieldReader, data: Any, key: str, where: str, *, default: int, low: int, high: int
) -> int:
    value = data.get(key) if isinstance(data, dict) else None
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        reader.error(data, key, where, f"field '{key}' must be an integer")
        return default
    return int(reader.number(data, key, where, default=default, low=low, high=high))


def _optional_number(
    reader: FieldReader, data: Any, key: str, where: str, *, low: float, high: float
) -> float | None:
    if not isinstance(data, dict) or data.get(key) is None:
        return None
    value = reader.number(data, key, where, default=float("nan"), low=low, high=high)
    return None if value != value else value


def _queue(
    reader: FieldReader, name: str, data: Any, where: str, calendars: Mapping[str, Calendar]
) -> QueueDef:
    if not isinstance(data, LocatedMap):
        reader.error(data, None, where, "a queue is a mapping of fields")
        data = LocatedMap()
        data.key_lines = {}
    reader.unknown_fields(data, _QUEUE_FIELDS, where)
    calendar = reader.string(data, "calendar", where) or ""
    if calendar and calendar not in calendars:
        known = ", ".join(sorted(calendars)) or "none"
        reader.error(data, "calendar", where, f"unknown calendar '{calendar}' (known: {known})")
    strategy = reader.string(data, "strategy", where, required=False, default="longest_idle")
    if strategy not in STRATEGIES:
        reader.error(
            data, "strategy", where, f"unknown strategy '{strategy}' (use {', '.join(STRATEGIES)})"
        )
        strategy = "longest_idle"
    music = reader.string(data, "hold_music_url", where, required=False)
    if music is not None and not music.startswith(("http://", "https://", "/")):
        reader.error(data, "hold_music_url", where, "must be an http(s) URL or an absolute path")
    return QueueDef(
        name=name,
        calendar=calendar,
        skills=_skills(reader, data, where, low=1),
        team=reader.string(data, "team", where, required=False),
        target_answer_s=reader.number(
            data, "target_answer_s", where, default=30.0, low=1, high=3600
        ),
        service_level_goal=reader.number(
            data, "service_level_goal", where, default=0.8, low=0.01, high=1.0
        ),
        priority=_int(reader, data, "priority", where, default=0, low=0, high=MAX_PRIORITY),
        priority_rules=_priority_rules(reader, data, where),
        overflow_after_s=_optional_number(
            reader, data, "overflow_after_s", where, low=0, high=86400
        ),
        overflow_to=reader.string(data, "overflow_to", where, required=False),
        callback_offer_s=_optional_number(
            reader, data, "callback_offer_s", where, low=0, high=86400
        ),
        announce_every_s=reader.number(
            data, "announce_every_s", where, default=30.0, low=5, high=600
        ),
        hold_music_url=music,
        short_abandon_s=reader.number(data, "short_abandon_s", where, default=5.0, low=0, high=120),
        wrap_up_s=reader.number(data, "wrap_up_s", where, default=10.0, low=0, high=3600),
        strategy=strategy or "longest_idle",
        max_waiting=(
            _int(reader, data, "max_waiting", where, default=0, low=1, high=1_000_000)
            if isinstance(data, dict) and data.get("max_waiting") is not None
            else None
        ),
    )


def _agent(reader: FieldReader, agent_id: str, data: Any, where: str) -> AgentDef:
    if not isinstance(data, LocatedMap):
        reader.error(data, None, where, "an agent is a mapping of fields")
        data = LocatedMap()
        data.key_lines = {}
    reader.unknown_fields(data, _AGENT_FIELDS, where)
    name = reader.string(data, "name", where) or agent_id
    phone = reader.string(data, "phone", where, required=False)
    client = reader.string(data, "client", where, required=False)
    address = ""
    if phone is not None and client is not None:
        reader.error(data, "client", where, "give either 'phone' or 'client', not both")
    elif phone is not None:
        if not _E164.match(phone):
            reader.error(data, "phone", where, f"phone '{phone}' is not E.164 (+<country><number>)")
        address = phone
    elif client is not None:
        address = client if client.startswith("client:") else f"client:{client}"
        if not _CLIENT.match(address):
            reader.error(data, "client", where, f"bad client name '{client}'")
    else:
        reader.error(data, "phone", where, "field 'phone' (or 'client') is required")
    token = reader.string(data, "token", where, required=False) or ""
    if token and len(token) < 12:
        reader.error(data, "token", where, "token must be at least 12 characters")
    return AgentDef(
        id=agent_id,
        name=name,
        address=address,
        skills=_skills(reader, data, where, low=1),
        team=reader.string(data, "team", where, required=False),
        token=token,
    )


def parse_queues(data: Any, file: str, calendars: Mapping[str, Calendar]) -> QueuesConfig:
    """Build and validate the configuration from a loaded YAML document."""
    issues: list[ConfigIssue] = []
    reader = FieldReader(file, issues)
    reader.unknown_fields(data, {"queues", "agents", "routing", "vip_queue", "default_queue"}, "")
    routing_raw = reader.mapping(data, "routing", "routing", required=False)
    reader.unknown_fields(routing_raw, _ROUTING_FIELDS, "routing")
    routing = RoutingDef(
        reserve_lease_s=reader.number(
            routing_raw, "reserve_lease_s", "routing", default=10.0, low=0.05, high=300
        ),
        ring_timeout_s=reader.number(
            routing_raw, "ring_timeout_s", "routing", default=25.0, low=0.05, high=300
        ),
        sweep_every_s=reader.number(
            routing_raw, "sweep_every_s", "routing", default=1.0, low=0.01, high=60
        ),
        abandoned_list_max=_int(
            reader, routing_raw, "abandoned_list_max", "routing", default=500, low=1, high=100000
        ),
    )
    queues: dict[str, QueueDef] = {}
    section = reader.mapping(data, "queues", "queues")
    for name, body in section.items():
        where = f"queues.{name}"
        if not _NAME.match(name):
            reader.error(section, name, where, "queue name must match [a-z][a-z0-9_-]{0,31}")
            continue
        queues[name] = _queue(reader, name, body, where, calendars)
    if not queues and "queues" in (data if isinstance(data, dict) else {}):
        reader.error(data, "queues", "queues", "at least one queue is required")
    agents: dict[str, AgentDef] = {}
    tokens: dict[str, str] = {}
    section_a = reader.mapping(data, "agents", "agents")
    for agent_id, body in section_a.items():
        where = f"agents.{agent_id}"
        if not _NAME.match(agent_id):
            reader.error(section_a, agent_id, where, "agent id must match [a-z][a-z0-9_-]{0,31}")
            continue
        agent = _agent(reader, agent_id, body, where)
        if agent.token:
            if agent.token in tokens:
                reader.error(body, "token", where, f"token already used by '{tokens[agent.token]}'")
            tokens[agent.token] = agent_id
        agents[agent_id] = agent
    # cross references
    teams = {a.team for a in agents.values() if a.team}
    for queue in queues.values():
        body = section.get(queue.name)
        where = f"queues.{queue.name}"
        if queue.overflow_to is not None:
            if queue.overflow_to not in queues:
                reader.error(body, "overflow_to", where, f"unknown queue '{queue.overflow_to}'")
            elif queue.overflow_to == queue.name:
                reader.error(body, "overflow_to", where, "a queue cannot overflow to itself")
            if queue.overflow_after_s is None:
                reader.error(body, "overflow_to", where, "'overflow_to' needs 'overflow_after_s'")
        elif queue.overflow_after_s is not None:
            reader.error(body, "overflow_after_s", where, "'overflow_after_s' needs 'overflow_to'")
        if queue.team is not None and agents and queue.team not in teams:
            reader.error(body, "team", where, f"no agent belongs to team '{queue.team}'")
    for key in ("vip_queue", "default_queue"):
        value = reader.string(data, key, "", required=False)
        if value is not None and value not in queues:
            reader.error(data, key, key, f"unknown queue '{value}'")
    if issues:
        raise ConfigError(issues)
    vip = data.get("vip_queue") if isinstance(data, dict) else None
    default = data.get("default_queue") if isinstance(data, dict) else None
    return QueuesConfig(
        queues=queues,
        agents=agents,
        routing=routing,
        vip_queue=str(vip) if vip is not None else None,
        default_queue=str(default) if default is not None else None,
    )


def load_queues_text(text: str, file: str, calendars: Mapping[str, Calendar]) -> QueuesConfig:
    return parse_queues(load_yaml_text(text, file), file, calendars)


def load_queues(path: Path, calendars: Mapping[str, Calendar]) -> QueuesConfig:
    """Load `queues.yaml`; raises ConfigError listing every problem with file and line."""
    return parse_queues(load_yaml_file(path), str(path), calendars)
