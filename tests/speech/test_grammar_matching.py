from __future__ import annotations

import json

import pytest

from speech.grammar import UNK, build_grammar, normalize
from speech.matching import DEFAULT_ACCEPT, MatchKind, match, score_options
from speech.recognizer import EndReason, Utterance, Word, parse_vosk_result

MENU = {
    "balance": ["잔액", "잔액 조회"],
    "lost_card": ["카드 분실"],
    "hours": ["영업 시간"],
    "agent": ["상담원"],
    "complaint": ["불만"],
}


def utt(*words: tuple[str, float]) -> Utterance:
    return Utterance(
        words=tuple(Word(w, c, 0.0, 0.0) for w, c in words),
        reason=EndReason.FINAL,
        speech_started=bool(words),
    )


def test_grammar_json_weights_phrases_and_adds_fillers() -> None:
    g = build_grammar(MENU, "ko", has_unk=False, fillers=["이", "그", "잔액"], keyword_weight=2)
    items = json.loads(g.to_vosk_json())
    assert items.count("카드 분실") == 2
    assert "이" in items and "그" in items
    assert UNK not in items
    assert g.fillers == ("이", "그")  # a menu word is never a filler
    assert g.garbage() == frozenset({"이", "그", UNK})


def test_grammar_with_unk_model_uses_unk_not_fillers() -> None:
    g = build_grammar(MENU, "ko", has_unk=True)
    items = json.loads(g.to_vosk_json())
    assert items[-1] == UNK and g.fillers == ()


def test_unknown_words_are_dropped_and_reported() -> None:
    vocab = {"잔액", "조회", "카드", "분실"}
    g = build_grammar(
        {"balance": ["잔액", "잔액 조회"], "lost": ["카드 분실", "카드 잃어버렸어요"]},
        "ko",
        knows_word=vocab.__contains__,
        fillers=[],
    )
    assert g.phrases == {"balance": ("잔액", "잔액 조회"), "lost": ("카드 분실",)}
    assert g.dropped == ("카드 잃어버렸어요",)


def test_same_phrase_for_two_options_is_an_error() -> None:
    with pytest.raises(ValueError, match="both"):
        build_grammar({"a": ["상담원"], "b": [" 상담원 "]}, "ko")


def test_normalize() -> None:
    assert normalize("  Lost   CARD ") == "lost card"


G = build_grammar(MENU, "ko", has_unk=False)


@pytest.mark.parametrize(
    ("words", "kind", "option"),
    [
        ((("카드", 1.0), ("분실", 1.0)), MatchKind.MATCHED, "lost_card"),
        ((("잔액", 0.9),), MatchKind.MATCHED, "balance"),
        ((("잔액", 1.0), ("조회", 1.0)), MatchKind.MATCHED, "balance"),
        ((("어", 1.0), ("상담원", 1.0)), MatchKind.MATCHED, "agent"),  # 0.5: just accepted
        ((("상담원", 0.45),), MatchKind.CONFIRM, "agent"),  # low word confidence
        ((("분실", 0.8),), MatchKind.CONFIRM, "lost_card"),  # half a phrase: 0.4
        ((("영업", 1.0), ("이", 1.0), ("가", 1.0)), MatchKind.CONFIRM, "hours"),  # 0.33
        ((("영업", 0.8), ("이", 1.0), ("가", 1.0)), MatchKind.NO_MATCH, None),  # 0.27
        ((("영업", 1.0), ("시간", 1.0), ("잔액", 1.0)), MatchKind.MATCHED, "hours"),  # 0.67
        ((("불만", 1.0), ("상담원", 1.0)), MatchKind.CONFIRM, "agent"),  # a tie: never routed
        ((("이", 1.0), ("가", 1.0), ("요", 0.9)), MatchKind.NO_MATCH, None),
        ((("[unk]", 1.0),), MatchKind.NO_MATCH, None),
        ((), MatchKind.NO_INPUT, None),
    ],
)
def test_match_table(
    words: tuple[tuple[str, float], ...], kind: MatchKind, option: str | None
) -> None:
    result = match(utt(*words), G)
    assert (result.kind, result.option) == (kind, option)


def test_speech_with_no_words_is_no_match_not_no_input() -> None:
    u = Utterance(words=(), reason=EndReason.FINAL, speech_started=True)
    assert match(u, G).kind is MatchKind.NO_MATCH


def test_scores_are_ranked_and_bounded() -> None:
    scores = score_options(utt(("카드", 1.0), ("분실", 1.0)), G)
    assert scores == {"lost_card": 1.0}
    assert 0 < DEFAULT_ACCEPT <= 1


def test_parse_vosk_result() -> None:
    raw = '{"result": [{"conf": 0.87, "end": 1.23, "start": 0.78, "word": "영업"}], "text": "영업"}'
    assert parse_vosk_result(raw) == (Word("영업", 0.87, 0.78, 1.23),)
    assert parse_vosk_result('{"text": ""}') == ()
    assert parse_vosk_result('{"text": "상담원"}') == (Word("상담원", 1.0, 0.0, 0.0),)
