"""queues.yaml: the demo file loads; every error names file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.calendar import load_calendars
from config.errors import ConfigError, ConfigIssue
from config.queues import QueuesConfig, load_queues, load_queues_text
from config.yamlload import load_yaml_file
from tests.queueing.test_store_support import CALENDARS

ROOT = Path(__file__).resolve().parents[2]


def demo() -> QueuesConfig:
    issues: list[ConfigIssue] = []
    calendars = load_calendars(load_yaml_file(ROOT / "config" / "calendars.yaml"), "c", issues)
    assert not issues
    return load_queues(ROOT / "config" / "queues.yaml", calendars)


def test_demo_config_loads() -> None:
    cfg = demo()
    assert set(cfg.queues) == {"general", "cards", "complaints", "vip"}
    assert all(q.calendar == "bank" for q in cfg.queues.values())
    assert 8 <= len(cfg.agents) <= 12
    care = [a for a in cfg.agents.values() if a.team == "care"]
    assert len(care) >= 2
    vip = cfg.queues["vip"]
    assert vip.team == "care" and vip.overflow_to == "general" and vip.overflow_after_s
    assert cfg.vip_queue == "vip" and cfg.default_queue == "general"
    assert cfg.queues["cards"].priority_for({"reason": "lost_card"}) == 8
    assert cfg.queues["cards"].priority_for({}) == 7
    assert cfg.queues["general"].target_answer_s == 30
    assert cfg.queues["general"].service_level_goal == 0.8
    assert "vip" in cfg.eligible("c01") and "vip" not in cfg.eligible("a01")
    assert cfg.agents["a06"].address == "client:frank"
    assert cfg.agent_for_token("demo-agent-a02-token") is cfg.agents["a02"]
    assert cfg.agent_for_token("nope") is None


def test_defaults() -> None:
    cfg = load_queues_text(
        "queues: {q: {calendar: always}}\nagents: {a: {name: A, phone: '+15551230000'}}\n",
        "x.yaml",
        CALENDARS,
    )
    q = cfg.queues["q"]
    assert (q.target_answer_s, q.service_level_goal, q.short_abandon_s) == (30, 0.8, 5)
    assert q.strategy == "longest_idle" and q.callback_threshold_s == 30
    assert cfg.agents["a"].level_for(q) == 1


BAD = [
    ("queues: {q: {calendar: nowhere}}\nagents: {}\n", 1, "queues.q", "unknown calendar"),
    (
        "queues:\n  q:\n    calendar: always\n    target_answer_s: -3\nagents: {}\n",
        4,
        "queues.q",
        "target_answer_s",
    ),
    (
        "queues:\n  q:\n    calendar: always\n    overflow_to: zz\n    overflow_after_s: 3\n"
        "agents: {}\n",
        4,
        "queues.q",
        "unknown queue 'zz'",
    ),
    (
        "queues:\n  q:\n    calendar: always\n    strategy: random\nagents: {}\n",
        4,
        "queues.q",
        "unknown strategy",
    ),
    (
        "queues:\n  q:\n    calendar: always\n    priority_rules:\n      - {when: {a: b}}\n"
        "agents: {}\n",
        5,
        "queues.q.priority_rules[0]",
        "'priority' is required",
    ),
    (
        "queues: {q: {calendar: always}}\nagents:\n  a:\n    name: A\n    phone: '555-1234'\n",
        5,
        "agents.a",
        "E.164",
    ),
    (
        "queues: {q: {calendar: always}}\nagents:\n  a:\n    name: A\n"
        "    phone: '+15551230000'\n    skills: {general: 11}\n",
        6,
        "agents.a.skills.general",
        "skill level",
    ),
    (
        "queues: {q: {calendar: always, team: care}}\n"
        "agents:\n  a: {name: A, phone: '+15551230000'}\n",
        1,
        "queues.q",
        "no agent belongs to team 'care'",
    ),
    (
        "queues: {q: {calendar: always}}\nagents:\n  a: {name: A, phone: '+15551230000', "
        "token: same-token-1234}\n  b: {name: B, phone: '+15551230001', token: same-token-1234}\n",
        4,
        "agents.b",
        "token already used",
    ),
    ("queues: {q: {calendar: always, colour: red}}\nagents: {}\n", 1, "queues.q", "unknown field"),
    ("queues: {q: {calendar: always}}\nagents: {}\nvip_queue: vvv\n", 3, "vip_queue", "unknown"),
]


@pytest.mark.parametrize(("text", "line", "where", "message"), BAD)
def test_errors_name_file_line_and_field(text: str, line: int, where: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_queues_text(text, "bad.yaml", CALENDARS)
    issues = info.value.issues
    match = [i for i in issues if i.where == where and message in i.message]
    assert match, [str(i) for i in issues]
    assert match[0].file == "bad.yaml" and match[0].line == line
    assert str(match[0]).startswith(f"bad.yaml:{line}: {where}: ")
