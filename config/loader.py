"""Load and cross-check the whole configuration directory once, at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from config.calendar import Calendar, load_calendars
from config.calling import CallingConfig, load_calling
from config.errors import ConfigError, ConfigIssue
from config.menus import Flow, load_flow
from config.queues import QueuesConfig, load_queues
from config.surveys import SurveyConfig, load_surveys
from config.yamlload import load_yaml_file


@dataclass(frozen=True)
class HotlineConfig:
    directory: Path
    calendars: dict[str, Calendar]
    queues: QueuesConfig
    flow: Flow
    calling: CallingConfig
    surveys: SurveyConfig


def load_config(directory: Path) -> HotlineConfig:
    """Every definition file, validated; all problems reported together as one ConfigError."""
    issues: list[ConfigIssue] = []
    calendars: dict[str, Calendar] = {}
    calendars_file = directory / "calendars.yaml"
    try:
        calendars = load_calendars(load_yaml_file(calendars_file), str(calendars_file), issues)
    except ConfigError as exc:
        issues.extend(exc.issues)
    queues: QueuesConfig | None = None
    try:
        queues = load_queues(directory / "queues.yaml", calendars)
    except ConfigError as exc:
        issues.extend(exc.issues)
    flow: Flow | None = None
    try:
        flow = load_flow(
            directory / "menus.yaml", queues=set(queues.queues) if queues is not None else None
        )
    except ConfigError as exc:
        issues.extend(exc.issues)
    calling: CallingConfig | None = None
    try:
        calling = load_calling(directory / "calling.yaml")
    except ConfigError as exc:
        issues.extend(exc.issues)
    surveys: SurveyConfig | None = None
    try:
        surveys = load_surveys(directory / "surveys.yaml")
    except ConfigError as exc:
        issues.extend(exc.issues)
    if issues or queues is None or flow is None or calling is None or surveys is None:
        raise ConfigError(issues)
    return HotlineConfig(
        directory=directory,
        calendars=calendars,
        queues=queues,
        flow=flow,
        calling=calling,
        surveys=surveys,
    )
