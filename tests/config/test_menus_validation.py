"""Every invalid-configuration case names the file, line, node and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.loader import load_config
from config.menus import parse_flow
from config.yamlload import load_yaml_text

HEADER = """\
languages:
  en: {say_language: en-US}
  ko: {say_language: ko-KR}
default_language: en
start: main
messages:
  invalid: {en: "Invalid.", ko: "잘못"}
  no_input: {en: "Nothing.", ko: "없음"}
  goodbye: {en: "Bye.", ko: "안녕"}
  error: {en: "Error.", ko: "오류"}
  closed: {en: "Closed.", ko: "닫힘"}
  auth_failed: {en: "Wrong.", ko: "틀림"}
  queue_position: {en: "Number {position}.", ko: "{position}번"}
  queue_wait: {en: "{minutes} minutes.", ko: "{minutes}분"}
  queue_wait_soon: {en: "Soon.", ko: "곧"}
  callback_offer: {en: "Press 1.", ko: "1번"}
  callback_taken: {en: "We will call.", ko: "전화"}
  callback_greeting: {en: "Hello.", ko: "안녕"}
nodes:
"""

GOOD_NODES = """\
  main:
    kind: menu
    prompt: {en: "Press 1.", ko: "1번."}
    options:
      - {key: "1", goto: agent}
    on_no_input: agent
    on_invalid: agent
  agent:
    kind: transfer
    queue: general
"""


def parse(nodes: str) -> None:
    text = HEADER + textwrap.indent(textwrap.dedent(nodes), "  ")
    parse_flow(load_yaml_text(text, "menus.yaml"), "menus.yaml", queues={"general"})


def problems(nodes: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(nodes)
    return [str(i) for i in caught.value.issues]


def test_a_good_flow_parses() -> None:
    parse(GOOD_NODES)


def test_unknown_target() -> None:
    found = problems(
        """\
        main:
          kind: menu
          prompt: {en: "Press 1.", ko: "1번."}
          options:
            - {key: "1", goto: nowhere}
          on_no_input: agent
          on_invalid: agent
        agent: {kind: transfer, queue: general}
        """
    )
    assert found == ["menus.yaml:24: nodes.main.options[1].goto: unknown target 'nowhere'"]


def test_unreachable_node() -> None:
    found = problems(
        """\
        main:
          kind: menu
          prompt: {en: "Press 1.", ko: "1번."}
          options:
            - {key: "1", goto: agent}
          on_no_input: agent
          on_invalid: agent
        agent: {kind: transfer, queue: general}
        orphan:
          kind: hangup
          prompt: {en: "Bye.", ko: "안녕"}
        """
    )
    assert found == ["menus.yaml:28: nodes.orphan: unreachable from the start node"]


def test_duplicate_option_key() -> None:
    found = problems(
        """\
        main:
          kind: menu
          prompt: {en: "Press 1.", ko: "1번."}
          options:
            - {key: "1", goto: agent}
            - {key: "1", goto: agent}
          on_no_input: agent
          on_invalid: agent
        agent: {kind: transfer, queue: general}
        """
    )
    assert found == ["menus.yaml:25: nodes.main.options[1]: duplicate key '1' (first at line 24)"]


def test_duplicate_yaml_key() -> None:
    found = problems(
        """\
        main:
          kind: menu
          kind: say
        """
    )
    assert found == ["menus.yaml:22: nodes.main.kind: duplicate key (first at line 21)"]


def test_missing_translation() -> None:
    found = problems(
        """\
        main:
          kind: menu
          prompt: {en: "Press 1."}
          options:
            - {key: "1", goto: agent}
          on_no_input: agent
          on_invalid: agent
        agent: {kind: transfer, queue: general}
        """
    )
    assert found == ["menus.yaml:22: nodes.main.prompt: missing translation 'ko'"]


def test_loop_with_no_exit() -> None:
    found = problems(
        """\
        main:
          kind: menu
          prompt: {en: "Press 1.", ko: "1번."}
          options:
            - {key: "1", goto: again}
          on_no_input: again
          on_invalid: again
        again:
          kind: menu
          prompt: {en: "Press 1.", ko: "1번."}
          options:
            - {key: "1", goto: main}
          on_no_input: main
          on_invalid: main
        """
    )
    assert "menus.yaml:20: nodes.main: loop with no exit" in found[0]
    assert "menus.yaml:27: nodes.again: loop with no exit" in found[1]


def test_unknown_queue_and_bad_key() -> None:
    found = problems(
        """\
        main:
          kind: menu
          prompt: {en: "Press 1.", ko: "1번."}
          options:
            - {key: "12", goto: agent}
          on_no_input: agent
          on_invalid: agent
        agent: {kind: transfer, queue: mortgages}
        """
    )
    assert found == [
        "menus.yaml:24: nodes.main.options[0]: key '12' is not a single keypad key",
        "menus.yaml:27: nodes.agent: unknown queue 'mortgages'",
    ]


def test_unknown_field_and_kind() -> None:
    found = problems(
        """\
        main:
          kind: menu
          prompt: {en: "Press 1.", ko: "1번."}
          options:
            - {key: "1", goto: agent}
          on_no_input: agent
          on_invalid: agent
          colour: blue
        agent: {kind: teleport, queue: general}
        """
    )
    assert found[0] == "menus.yaml:27: nodes.main: unknown field 'colour'"
    assert found[1].startswith("menus.yaml:28: nodes.agent: unknown kind 'teleport'")
    assert len(found) == 2


def test_broken_yaml_names_the_line() -> None:
    with pytest.raises(ConfigError) as caught:
        load_yaml_text("nodes:\n  main: [unclosed\n  other: 1\n", "menus.yaml")
    assert str(caught.value).startswith("menus.yaml:3: YAML syntax:")


BAD_HOURS = """\
calendars:
  bank:
    timezone: Asia/Shanghai
    hours:
      mon-fri: "20:00-08:00"
      sat: "09:00-25:00"
      funday: "09:00-10:00"
    holidays: [2026-13-01]
"""


def test_bad_time_ranges_stop_the_service_from_starting(tmp_path: Path) -> None:
    source = Path(__file__).resolve().parents[2] / "config"
    for name in ("menus.yaml", "queues.yaml", "accounts.yaml"):
        (tmp_path / name).write_text((source / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "calendars.yaml").write_text(BAD_HOURS, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    text = str(caught.value)
    calendars = str(tmp_path / "calendars.yaml")
    assert f"{calendars}:5: calendars.bank.hours.mon-fri: bad time range '20:00-08:00'" in text
    assert f"{calendars}:6: calendars.bank.hours.sat: bad time range '09:00-25:00'" in text
    assert f"{calendars}:7: calendars.bank.hours.funday: unknown days 'funday'" in text
    assert f"{calendars}:8: calendars.bank.holidays[0]: bad date" in text


def test_the_command_line_refuses_to_start_on_bad_configuration(tmp_path: Path) -> None:
    import subprocess
    import sys

    source = Path(__file__).resolve().parents[2] / "config"
    for name in ("menus.yaml", "queues.yaml", "accounts.yaml"):
        (tmp_path / name).write_text((source / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "calendars.yaml").write_text(BAD_HOURS, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "hotline", "check-config", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "configuration error, refusing to start" in result.stderr
    assert "calendars.yaml:5" in result.stderr


def test_the_demo_configuration_is_valid() -> None:
    config = load_config(Path(__file__).resolve().parents[2] / "config")
    assert set(config.flow.languages) == {"zh", "en", "ko"}
