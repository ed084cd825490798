"""The Renderer's two speech hooks, built before start-up and filled in once speech is up.

`Renderer` and `FlowDeps` are frozen and built by `create_app` (no I/O), while the prompt
cache and the recogniser only exist once the start-up context has run (off the event
loop). `SpeechHooks` is the bridge: `prompt_url` and `voice_ok` are bound methods handed
to the Renderer; until `attach_*` is called they answer "not rendered" and "keypad".

Both hooks run on the event loop for every TwiML document, so neither touches the disk:
the prompts present in the cache directory are an in-memory set of keys, listed once in
a thread at start-up and extended as background renders finish.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from config.menus import Flow, NodeKind
from ivr.engine import Gather, Session, node_prompts
from speech.prompts import PROMPT_ROUTE, PromptCache
from speech.recognizer import SpeechRecognizer

log = logging.getLogger("hotline.ivr")


def cached_keys(directory: Path) -> set[str]:
    """Keys of the prompts rendered in `directory` (blocking: run it in a thread)."""
    if not directory.is_dir():
        return set()
    return {p.stem for p in directory.glob("*.wav") if len(p.stem) == 32}


class SpeechHooks:
    def __init__(self, flow: Flow, base_url: str) -> None:
        self._flow = flow
        self._base = base_url.rstrip("/")
        self._cache: PromptCache | None = None
        self._present: set[str] = set()
        self._recognizer: SpeechRecognizer | None = None

    def __repr__(self) -> str:
        return f"SpeechHooks(prompts={len(self._present)}, recognizer={self._recognizer!r})"

    # --- filled in at start-up --------------------------------------------------------
    def attach_prompts(self, cache: PromptCache, present: Iterable[str]) -> None:
        self._cache = cache
        self._present = set(present)

    def mark_rendered(self, keys: Iterable[str]) -> None:
        self._present.update(keys)

    def attach_recognizer(self, recognizer: SpeechRecognizer | None) -> None:
        self._recognizer = recognizer

    def detach(self) -> None:
        self._cache = None
        self._recognizer = None
        self._present = set()

    @property
    def cache(self) -> PromptCache | None:
        return self._cache

    # --- the Renderer's hooks ---------------------------------------------------------
    def has_prompt(self, text: str, lang: str) -> bool:
        cache = self._cache
        return cache is not None and cache.key_for(text, lang) in self._present

    def prompt_url(self, text: str, lang: str) -> str | None:
        """`{PUBLIC_URL}/prompts/{hash}.wav` if the prompt is rendered, else None (<Say>)."""
        cache = self._cache
        if cache is None:
            return None
        key = cache.key_for(text, lang)
        if key not in self._present:
            return None
        return self._base + PROMPT_ROUTE.format(name=f"{key}.wav")

    def voice_ok(self, gather: Gather, session: Session) -> bool:
        """Speech can serve this voice menu now: a model for the caller's language, the
        node's prompt rendered (the websocket plays it) and a free recogniser slot (checked
        again, for real, when the stream starts). The log says why not."""
        extra = {"call_sid": session.call_sid, "node": gather.node, "lang": session.lang}
        rec = self._recognizer
        node = self._flow.nodes.get(gather.node)
        if node is None or node.kind is not NodeKind.MENU:
            return False
        if rec is None or not rec.available(session.lang):
            log.info("no speech model for the language; keypad menu", extra=extra)
            return False
        if rec.active >= rec.max_sessions:
            log.warning("speech recognition at capacity; keypad menu", extra=extra)
            return False
        prompts = node_prompts(self._flow, node, session.lang)
        if not prompts or not all(self.has_prompt(p.text, p.lang) for p in prompts):
            log.info("voice menu prompt not rendered yet; keypad menu", extra=extra)
            return False
        return True
