"""calling.yaml and surveys.yaml: the demo files load; bad values name file, line, field."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.calling import MachinePolicy, load_calling, parse_calling, parse_duration
from config.errors import ConfigError
from config.surveys import SurveyMode, load_surveys, parse_surveys
from config.yamlload import load_yaml_text

ROOT = Path(__file__).resolve().parents[2]


def test_demo_calling_loads() -> None:
    config = load_calling(ROOT / "config" / "calling.yaml")
    assert config.bank_timezone == "Asia/Shanghai"
    assert config.retry_for("survey").on_machine is MachinePolicy.GIVE_UP
    assert config.retry_for("care_follow_up").delay_after(1) == 900
    assert config.retry_for("care_follow_up").delay_after(99) == 86400
    assert config.survey_delay_for("cards") == 300
    assert config.survey_delay_for("unknown") == 600
    assert config.countries[0][0] in {"+852", "+853", "+886"}  # longest prefixes first


def test_demo_surveys_load() -> None:
    config = load_surveys(ROOT / "config" / "surveys.yaml")
    assert set(config.prompts) == {"zh", "en", "ko"}
    assert config.mode_for("cards") is SurveyMode.OUTBOUND
    assert config.mode_for("general") is SurveyMode.SAME_CALL
    assert config.prompts_for("fr").language == "zh"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), (45, 45), ("1.5h", 5400)],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["15", "m", "-1s", -3, True, "1w", None])
def test_bad_durations(value: object) -> None:
    assert parse_duration(value) is None


BAD_CALLING = """\
calling:
  window:
    timezone: Mars/Olympus
    hours: {mon-fri: "09:00-20:00"}
  countries:
    "86": Asia/Shanghai
    "+1": Nowhere/City
  rate_limit: {calls_per_second: 0}
  retry:
    survey: {backoff: [10m, soon], max_attempts: 50, on_machine: shout}
    lottery: {backoff: [1m]}
  colour: blue
"""


@pytest.mark.parametrize(
    ("line", "where", "words"),
    [
        (3, "calling.window", "unknown time zone"),
        (6, "calling.countries.86", "country prefix"),
        (7, "calling.countries.+1", "unknown time zone"),
        (8, "calling.rate_limit", "calls_per_second"),
        (10, "calling.retry.survey.backoff[1]", "bad duration"),
        (10, "calling.retry.survey", "max_attempts"),
        (10, "calling.retry.survey", "on_machine"),
        (11, "calling.retry.lottery", "unknown job kind"),
        (12, "calling", "unknown field 'colour'"),
    ],
)
def test_calling_errors_name_line_and_field(line: int, where: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_calling(load_yaml_text(BAD_CALLING, "calling.yaml"), "calling.yaml")
    matches = [
        i for i in caught.value.issues if i.line == line and i.where == where and words in i.message
    ]
    assert matches, [str(i) for i in caught.value.issues]
    assert str(matches[0]).startswith(f"calling.yaml:{line}: {where}: ")


BAD_SURVEYS = """\
surveys:
  default_mode: sometimes
  modes:
    cards: later
  questions:
    fr: {score: "?", solved: "?", thanks: "merci"}
    en:
      score: "Rate us"
      thanks: "Bye"
"""


@pytest.mark.parametrize(
    ("line", "where", "words"),
    [
        (2, "surveys", "default_mode"),
        (4, "surveys.modes", "cards"),
        (6, "surveys.questions.fr", "unknown language"),
        (8, "surveys.questions.en", "'solved' is required"),
    ],
)
def test_survey_errors_name_line_and_field(line: int, where: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_surveys(load_yaml_text(BAD_SURVEYS, "surveys.yaml"), "surveys.yaml")
    assert any(
        i.line == line and i.where == where and words in i.message for i in caught.value.issues
    ), [str(i) for i in caught.value.issues]
