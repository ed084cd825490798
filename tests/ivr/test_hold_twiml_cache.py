"""Hold documents kept for reuse say exactly what a fresh render says, within their age."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from config.loader import load_config
from ivr import queue_twiml
from ivr.queue_twiml import HoldTwiml, wait_said
from ivr.twiml import Renderer

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config")
QUEUE = next(iter(CONFIG.queues.queues.values()))


@pytest.mark.parametrize(
    ("ewt_s", "said"),
    [(None, None), (float("inf"), None), (0.0, 0), (59.9, 0), (60.0, 1), (61.0, 2), (600.0, 10)],
)
def test_wait_said_matches_the_announcement(ewt_s: float | None, said: int | None) -> None:
    assert wait_said(ewt_s) == said


def test_kept_documents_equal_fresh_ones() -> None:
    r = Renderer(CONFIG.flow, "https://hotline.bank.test")
    cache = HoldTwiml()
    for position in (None, 1, 2, 7):
        for ewt in (None, float("inf"), 5.0, 59.0, 61.0, 119.0, 121.0, 900.0):
            for offer in (False, True):
                kw = {"position": position, "ewt_s": ewt, "offer_callback": offer}
                fresh = queue_twiml.hold(r, QUEUE, "en", **kw)  # type: ignore[arg-type]
                assert cache.hold(r, QUEUE, "en", **kw) == fresh  # type: ignore[arg-type]
                assert cache.hold(r, QUEUE, "en", **kw) == fresh  # type: ignore[arg-type]


def test_documents_are_dropped_after_their_age_and_never_cross_renderers() -> None:
    plain = Renderer(CONFIG.flow, "https://hotline.bank.test")
    played = Renderer(
        CONFIG.flow, "https://hotline.bank.test", prompt_url=lambda _text, _lang: "/p.wav"
    )
    cache = HoldTwiml(max_entries=4, max_age_s=0.2)
    kw = {"position": 3, "ewt_s": 90.0, "offer_callback": False}
    first = cache.hold(plain, QUEUE, "en", **kw)  # type: ignore[arg-type]
    assert "<Say" in first
    other = cache.hold(played, QUEUE, "en", **kw)  # type: ignore[arg-type]
    assert "<Play>/p.wav</Play>" in other and "<Say" not in other
    for position in range(10):  # past the bound: dropped, still correct
        kw["position"] = position
        assert cache.hold(plain, QUEUE, "en", **kw) == queue_twiml.hold(plain, QUEUE, "en", **kw)  # type: ignore[arg-type]
        assert len(cache._held) <= 4
    time.sleep(0.2)
    cache.hold(plain, QUEUE, "en", **kw)  # type: ignore[arg-type]
    assert len(cache._held) == 1
