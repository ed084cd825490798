"""Every prompt the service can say, as (text, language): what `hotline prompts build`
and the start-up background render turn into audio. Pure.

- every node's prompt in every language (templates filled at run time, like the balance,
  are left to <Say>);
- every system message; a message with run-time numbers ("You are number {position} in
  the queue.") contributes the fragments around the number, plus the numbers themselves
  (`speech.prompts.number_prompts`), when `spoken_fragments` can assemble it in that
  language (otherwise it is said with <Say> at run time);
- every survey prompt.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable

from config.menus import Flow
from config.surveys import SurveyConfig
from speech.prompts import number_prompts, spoken_fragments

SAMPLE_NUMBER = 7  # stands in for a run-time number when splitting a message into fragments
_FIELD = re.compile(r"\{[^{}]*\}")


def _fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


def _message_items(text: str, lang: str) -> tuple[list[tuple[str, str]], bool]:
    """(items, needs numbers) for one message text."""
    try:
        names = _fields(text)
    except ValueError:
        return [(text, lang)], False
    if not names:
        return [(text, lang)], False
    filled = _FIELD.sub(str(SAMPLE_NUMBER), text)
    fragments = spoken_fragments(filled, lang)
    if fragments is None:
        return [], False  # said with <Say> at run time
    return [(f.text, lang) for f in fragments if not f.is_number], True


def prompt_items(flow: Flow, surveys: SurveyConfig | None = None) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    numbers: set[str] = set()
    for node in flow.nodes.values():
        for lang, text in node.prompt.items():
            if "{" not in text:
                items.append((text, lang))
    for texts in flow.messages.values():
        for lang, text in texts.items():
            found, needs_numbers = _message_items(text, lang)
            items.extend(found)
            if needs_numbers:
                numbers.add(lang)
    if surveys is not None:
        for lang, p in surveys.prompts.items():
            for said in (p.intro, p.score, p.solved, p.comment, p.thanks):
                if said and "{" not in said:
                    items.append((said, lang))
    for lang in sorted(numbers):
        items.extend(number_prompts(lang))
    return _unique(items)


def _unique(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(items))
