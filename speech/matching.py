"""Match a recognized utterance to a menu option, with a confidence score.

Scoring (pure, deterministic):
- every recognized word is either a *keyword* (a word of some option's phrases) or
  *garbage* (`[unk]`, a filler, anything else);
- each option's score (`score_options`) is the best of its phrases: the summed vosk
  confidence of the phrase's words heard, over max(phrase length, words heard). Garbage,
  words of other options and missing words of the phrase all lower it: a clean "카드 분실"
  at confidence 1.0 scores 1.0, "분실" alone at most 0.5, "영업 이 가" at most 0.33;
- the best option wins; with no words and no speech the result is NO_INPUT;
- score >= `accept` -> MATCHED; `reject` <= score < `accept` -> CONFIRM (ask "did you
  mean ...?" or repeat); below `reject` (or no keyword at all) -> NO_MATCH (outside the
  grammar).

`DEFAULT_ACCEPT` comes from the fixtures (bench/asr_bench.py prints the table): it is the
lowest threshold at which no out-of-grammar or wrong-option fixture is routed, rounded up.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from speech.grammar import Grammar
from speech.recognizer import Utterance

# Measured on the 48 fixtures (bench/asr_bench.py; Korean model, phone-line audio, the
# default fillers and front-end, decoding from 300 ms before the start of speech): the
# best-scoring impostors were 0.441 (a wrong option) and 0.439 (out of grammar). Right
# answers scored 0.33-1.00. Accept 0.45 and 0.5 both route 25 of 36 right, re-prompt 11
# and route no impostor; 0.5 keeps the wider margin (0.06). Below 0.45 a wrong option is
# routed. With 16 s of prompt silence before the phrase the figures are the same (that
# silence is not decoded); the old ungated decoding gave 19 right and 1 wrongly routed
# there. Below REJECT the guess is not even offered for confirmation: 11 of the 12
# out-of-grammar fixtures land there.
DEFAULT_ACCEPT = 0.5
DEFAULT_REJECT = 0.3


class MatchKind(str, enum.Enum):
    MATCHED = "matched"  # route to `option`
    CONFIRM = "confirm"  # `option` is a guess: confirm it or ask again
    NO_MATCH = "no_match"  # speech outside the grammar
    NO_INPUT = "no_input"  # nothing said


@dataclass(frozen=True)
class Match:
    kind: MatchKind
    option: str | None = None
    score: float = 0.0
    text: str = ""
    scores: tuple[tuple[str, float], ...] = ()  # every option with a non-zero score, best first


def score_options(utterance: Utterance, grammar: Grammar) -> dict[str, float]:
    """option -> score in 0..1. For each phrase of the option: the summed confidence of its
    words heard in the utterance, over max(words in the phrase, words heard); the option
    takes its best phrase. So half a phrase ("분실" for "카드 분실") scores at most 0.5, and
    every garbage word or word of another option dilutes the score."""
    words = utterance.words
    if not words:
        return {}
    best_conf: dict[str, float] = {}
    for w in words:
        best_conf[w.word] = max(best_conf.get(w.word, 0.0), max(0.0, min(1.0, w.conf)))
    scores: dict[str, float] = {}
    for option, phrases in grammar.phrases.items():
        best = 0.0
        for phrase in phrases:
            parts = phrase.split()
            heard = sum(best_conf.get(part, 0.0) for part in parts)
            best = max(best, heard / max(len(parts), len(words)))
        if best > 0.0:
            scores[option] = best
    return scores


def match(
    utterance: Utterance,
    grammar: Grammar,
    *,
    accept: float = DEFAULT_ACCEPT,
    reject: float = DEFAULT_REJECT,
) -> Match:
    """The option this utterance chooses, and how sure we are."""
    text = utterance.text
    if not utterance.words:
        kind = MatchKind.NO_MATCH if utterance.speech_started else MatchKind.NO_INPUT
        return Match(kind=kind, text=text)
    scores = score_options(utterance, grammar)
    ranked = tuple(sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])))
    if not ranked or ranked[0][1] < reject:
        return Match(kind=MatchKind.NO_MATCH, text=text, scores=ranked)
    option, best = ranked[0]
    # Ties between options (e.g. a word shared by two options) are never routed.
    tied = len(ranked) > 1 and ranked[1][1] == best
    kind = MatchKind.MATCHED if best >= accept and not tied else MatchKind.CONFIRM
    return Match(kind=kind, option=option, score=round(best, 4), text=text, scores=ranked)
