"""Recognition grammars built from a menu node's options.

vosk turns the JSON list of phrases it is given into a small bigram language model (order 2,
counts from the list), so:
- a phrase listed more than once weighs more; `keyword_weight` uses that to keep the menu's
  phrases ahead of the filler words;
- the model's garbage word `[unk]` catches speech outside the grammar, but only in models
  that have it. The Korean model shipped on PyPI has no `[unk]`; for models like it the
  grammar adds *filler* words (short, common words of the language) that absorb whatever
  is not a menu phrase. The matcher treats fillers exactly like `[unk]`.

Words the model does not know are dropped from the grammar (vosk would drop them with a
warning anyway) and reported in `Grammar.dropped`, so a menu author learns about it at
start-up rather than from a caller.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

UNK = "[unk]"

# Short, frequent Korean words (particles, interjections, endings) of the Korean model's
# vocabulary that soak up out-of-grammar speech. Chosen on the fixtures (bench/asr_bench.py):
# a wider set with "저", "에", "네", "고", "아" swallowed "잔액" ("저 에") and "불만" ("고 아")
# and fell to 17-23/36 right; these nine keep 28/36 with every impostor scoring <= 0.40.
DEFAULT_FILLERS: Mapping[str, tuple[str, ...]] = {
    "ko": ("이", "그", "요", "가", "다", "는", "도", "음", "어"),
}

DEFAULT_KEYWORD_WEIGHT = 6


def normalize(text: str) -> str:
    """NFC, lower case, single spaces: the form phrases are compared in."""
    return " ".join(unicodedata.normalize("NFC", text).lower().split())


@dataclass(frozen=True)
class Grammar:
    """The phrases a recognizer may hear at one menu node, in one language."""

    lang: str
    phrases: Mapping[str, tuple[str, ...]]  # option -> normalized phrases (synonyms too)
    fillers: tuple[str, ...] = ()
    use_unk: bool = True
    keyword_weight: int = DEFAULT_KEYWORD_WEIGHT
    dropped: tuple[str, ...] = field(default=())  # phrases with a word the model lacks

    @property
    def options(self) -> tuple[str, ...]:
        return tuple(self.phrases)

    def option_words(self) -> dict[str, frozenset[str]]:
        return {o: frozenset(w for p in ps for w in p.split()) for o, ps in self.phrases.items()}

    def keywords(self) -> frozenset[str]:
        return frozenset(w for ws in self.option_words().values() for w in ws)

    def garbage(self) -> frozenset[str]:
        """Words that mean 'not in the menu': fillers and [unk] (never a menu word)."""
        return (frozenset(self.fillers) | {UNK}) - self.keywords()

    def to_vosk_json(self) -> str:
        """The grammar as vosk expects it: a JSON list of phrases."""
        items: list[str] = []
        for phrases in self.phrases.values():
            for phrase in phrases:
                items.extend([phrase] * self.keyword_weight)
        items.extend(self.fillers)
        if self.use_unk:
            items.append(UNK)
        return json.dumps(items, ensure_ascii=False)


def build_grammar(
    options: Mapping[str, Sequence[str]],
    lang: str,
    *,
    knows_word: Callable[[str], bool] | None = None,
    has_unk: bool = True,
    fillers: Iterable[str] | None = None,
    keyword_weight: int = DEFAULT_KEYWORD_WEIGHT,
) -> Grammar:
    """A grammar from `{option: [phrase, synonym, ...]}` for one language.

    `knows_word` is the model's vocabulary check (`LoadedModel.knows`); phrases with an
    unknown word are dropped and listed in `dropped`. Without `[unk]` in the model
    (`has_unk=False`), fillers default to `DEFAULT_FILLERS[lang]`.
    """
    if keyword_weight < 1:
        raise ValueError("keyword_weight must be at least 1")
    known = knows_word or (lambda _w: True)
    phrases: dict[str, tuple[str, ...]] = {}
    dropped: list[str] = []
    seen: dict[str, str] = {}
    for option, texts in options.items():
        kept: list[str] = []
        for text in texts:
            phrase = normalize(text)
            if not phrase:
                continue
            if phrase in seen and seen[phrase] != option:
                raise ValueError(
                    f"phrase {phrase!r} is given for both {seen[phrase]!r} and {option!r}"
                )
            if not all(known(w) for w in phrase.split()):
                dropped.append(phrase)
                continue
            seen[phrase] = option
            if phrase not in kept:
                kept.append(phrase)
        if kept:
            phrases[option] = tuple(kept)
    if fillers is None:
        fillers = () if has_unk else DEFAULT_FILLERS.get(lang, ())
    keywords = {w for ps in phrases.values() for p in ps for w in p.split()}
    filler_words = tuple(
        dict.fromkeys(f for f in (normalize(x) for x in fillers) if f and f not in keywords)
    )
    filler_words = tuple(f for f in filler_words if known(f))
    return Grammar(
        lang=lang,
        phrases=phrases,
        fillers=filler_words,
        use_unk=has_unk,
        keyword_weight=keyword_weight,
        dropped=tuple(dropped),
    )
