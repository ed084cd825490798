"""Satisfaction survey definitions: prompts per language and the survey mode per queue.

Questions (fixed by the bank's plan): a 1..5 satisfaction score, "was your problem solved"
(yes/no), and an optional recorded comment. Problems are reported with file, line, field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from config.errors import ConfigError, ConfigIssue
from config.yamlload import FieldReader, LocatedMap, load_yaml_file

LANGUAGES = ("zh", "en", "ko")
PROMPTS = ("intro", "score", "solved", "comment", "thanks")
REQUIRED_PROMPTS = ("score", "solved", "thanks")


class SurveyMode(str, Enum):
    SAME_CALL = "same_call"  # after the agent hangs up, in the same call (<Dial action>)
    OUTBOUND = "outbound"  # an outbound call after calling.survey_delay for the queue
    OFF = "off"


@dataclass(frozen=True)
class SurveyPrompts:
    language: str
    intro: str | None
    score: str
    solved: str
    comment: str | None  # None: no recorded comment in this language
    thanks: str


@dataclass(frozen=True)
class SurveyConfig:
    default_language: str
    default_mode: SurveyMode
    modes: Mapping[str, SurveyMode]  # queue -> mode
    prompts: Mapping[str, SurveyPrompts]  # language -> prompts
    comment_max_seconds: int = 60

    def mode_for(self, queue: str | None) -> SurveyMode:
        if queue is not None and queue in self.modes:
            return self.modes[queue]
        return self.default_mode

    def prompts_for(self, language: str | None) -> SurveyPrompts:
        if language is not None and language in self.prompts:
            return self.prompts[language]
        return self.prompts[self.default_language]


def _mode(reader: FieldReader, data: Any, key: str, where: str, default: SurveyMode) -> SurveyMode:
    raw = reader.string(data, key, where, required=False)
    if raw is None:
        return default
    try:
        return SurveyMode(raw)
    except ValueError:
        reader.error(
            data,
            key,
            where,
            f"field '{key}' must be one of {', '.join(m.value for m in SurveyMode)}",
        )
        return default


def parse_surveys(data: Any, file: str) -> SurveyConfig:
    issues: list[ConfigIssue] = []
    reader = FieldReader(file, issues)
    root = reader.mapping(data, "surveys", "surveys")
    where = "surveys"
    reader.unknown_fields(
        root,
        {"default_language", "default_mode", "modes", "questions", "comment_max_seconds"},
        where,
    )
    default_language = reader.string(root, "default_language", where, required=False) or "zh"
    default_mode = _mode(reader, root, "default_mode", where, SurveyMode.SAME_CALL)
    modes_section = reader.mapping(root, "modes", where, required=False)
    modes = {
        str(queue): _mode(reader, modes_section, str(queue), f"{where}.modes", default_mode)
        for queue in modes_section
    }
    comment_max = reader.number(root, "comment_max_seconds", where, default=60, low=5, high=600)
    prompts: dict[str, SurveyPrompts] = {}
    questions = reader.mapping(root, "questions", where)
    for language, body in questions.items():
        lang_where = f"{where}.questions.{language}"
        if language not in LANGUAGES:
            reader.error(
                questions, language, lang_where, f"unknown language (use {', '.join(LANGUAGES)})"
            )
            continue
        if not isinstance(body, LocatedMap):
            reader.error(questions, language, lang_where, "must be a mapping of prompts")
            continue
        reader.unknown_fields(body, set(PROMPTS), lang_where)
        text = {
            name: reader.string(body, name, lang_where, required=name in REQUIRED_PROMPTS)
            for name in PROMPTS
        }
        prompts[str(language)] = SurveyPrompts(
            language=str(language),
            intro=text["intro"],
            score=text["score"] or "",
            solved=text["solved"] or "",
            comment=text["comment"],
            thanks=text["thanks"] or "",
        )
    if default_language not in prompts and not issues:
        reader.error(
            root, "default_language", where, f"no questions for language '{default_language}'"
        )
    if issues:
        raise ConfigError(issues)
    return SurveyConfig(
        default_language=default_language,
        default_mode=default_mode,
        modes=MappingProxyType(modes),
        prompts=MappingProxyType(prompts),
        comment_max_seconds=int(comment_max),
    )


def load_surveys(path: Path) -> SurveyConfig:
    return parse_surveys(load_yaml_file(path), str(path))
