"""TwiML for a call in a queue: the hold loop, the dial to an agent, the agent's whisper.

Pure functions of their inputs, so they are tested without HTTP.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from config.menus import Flow
from config.queues import QueueDef
from ivr.engine import Say
from ivr.holdmusic import CLIP_S
from ivr.twiml import Renderer, hold_in_queue

CALLBACK_KEY = "1"


def minutes(ewt_s: float) -> int:
    return max(1, math.ceil(ewt_s / 60))


def announcement(flow: Flow, lang: str, position: int | None, ewt_s: float | None) -> list[Say]:
    said: list[Say] = []
    if position is not None:
        said.append(Say(flow.message("queue_position", lang).format(position=position), lang))
    if ewt_s is not None and math.isfinite(ewt_s) and ewt_s >= 60:
        said.append(Say(flow.message("queue_wait", lang).format(minutes=minutes(ewt_s)), lang))
    elif ewt_s is not None and math.isfinite(ewt_s):
        said.append(Say(flow.message("queue_wait_soon", lang), lang))
    return said


def hold(
    r: Renderer,
    queue: QueueDef,
    lang: str,
    *,
    position: int | None,
    ewt_s: float | None,
    offer_callback: bool,
    first: Say | None = None,
) -> str:
    """One turn of the <Enqueue> waitUrl loop: position and wait, maybe the callback offer,
    then music or a pause of the announcement interval (Twilio then asks again)."""
    response = VoiceResponse()
    said = ([first] if first else []) + announcement(r.flow, lang, position, ewt_s)
    if offer_callback:
        gather: Gather = response.gather(
            input="dtmf",
            num_digits=1,
            timeout=1,
            action=r.url("/queue/hold/key", lang=lang, q=queue.name),
            method="POST",
        )
        for say in said:
            r.speak(gather, say)
        r.speak(gather, Say(r.flow.message("callback_offer", lang), lang))
    else:
        for say in said:
            r.speak(response, say)
    if queue.hold_music_url:
        url = queue.hold_music_url
        if url.startswith("/"):
            url = r.base_url + url
        response.play(url, loop=max(1, round(queue.announce_every_s / CLIP_S)))
    else:
        response.pause(length=max(1, round(queue.announce_every_s)))
    return str(response)


def wait_said(ewt_s: float | None) -> int | None:
    """What `announcement` says of the wait: None nothing, 0 "soon", else minutes."""
    if ewt_s is None or not math.isfinite(ewt_s):
        return None
    return minutes(ewt_s) if ewt_s >= 60 else 0


class HoldTwiml:
    """`hold()` documents kept for reuse: many callers hear the same words (same queue,
    language, position, minutes, offer). Bound: `max_entries`; staleness: `max_age_s`
    (the whole set is dropped then, so prompts rendered meanwhile are <Play>ed from then
    on and a changed renderer is never served an old document)."""

    def __init__(self, max_entries: int = 2048, max_age_s: float = 1.0) -> None:
        self.max_entries = max_entries
        self.max_age_s = max_age_s
        self._held: dict[tuple[str, str, int | None, int | None, bool], tuple[Renderer, str]] = {}
        self._since = time.monotonic()

    def hold(
        self,
        r: Renderer,
        queue: QueueDef,
        lang: str,
        *,
        position: int | None,
        ewt_s: float | None,
        offer_callback: bool,
    ) -> str:
        now = time.monotonic()
        if now - self._since >= self.max_age_s or len(self._held) >= self.max_entries:
            self._held.clear()
            self._since = now
        key = (queue.name, lang, position, wait_said(ewt_s), offer_callback)
        held = self._held.get(key)
        if held is not None and held[0] is r:
            return held[1]
        text = hold(r, queue, lang, position=position, ewt_s=ewt_s, offer_callback=offer_callback)
        self._held[key] = (r, text)
        return text


def say_then(r: Renderer, lang: str, message: str, *, hangup: bool) -> str:
    response = VoiceResponse()
    r.speak(response, Say(r.flow.message(message, lang), lang))
    if hangup:
        response.hangup()
    return str(response)


BUSY_DEFAULT = (
    "All our advisers are busy and we cannot take more calls right now. "
    "Please call again later. Goodbye."
)


def busy(r: Renderer, lang: str) -> str:
    """The busy path: the queue is at capacity; a polite message, then hang up."""
    response = VoiceResponse()
    text = r.flow.message("busy", lang) or BUSY_DEFAULT
    r.speak(response, Say(text, lang))
    response.hangup()
    return str(response)


def back_to_queue(r: Renderer, queue: str, lang: str) -> str:
    """Wait in the queue again (after a key press or an agent who did not answer)."""
    response = VoiceResponse()
    hold_in_queue(response, r, queue, lang)
    return str(response)


def pause(seconds: int) -> str:
    response = VoiceResponse()
    response.pause(length=seconds)
    return str(response)


def empty() -> str:
    return str(VoiceResponse())


def dial_agent(
    base_url: str,
    *,
    call_sid: str,
    queue: str,
    reservation: int,
    agent_address: str,
    ring_timeout_s: float,
    lang: str,
    greeting: VoiceResponse | None = None,
) -> str:
    """Connect a caller to the reserved agent; the agent first hears the whisper."""
    response = greeting or VoiceResponse()
    query = {"call": call_sid, "res": str(reservation), "q": queue, "lang": lang}
    dial: Dial = response.dial(
        action=f"{base_url}/queue/dialed?{urlencode(query)}",
        method="POST",
        timeout=max(5, round(ring_timeout_s)),
        answer_on_bridge=True,
    )
    whisper = f"{base_url}/queue/whisper?{urlencode(query)}"
    if agent_address.startswith("client:"):
        dial.client(agent_address.removeprefix("client:"), url=whisper, method="POST")
    else:
        dial.number(agent_address, url=whisper, method="POST")
    return str(response)


def whisper_text(queue: str, priority: int, info: Mapping[str, Any], waited_s: float) -> str:
    parts = [f"Queue {queue}."]
    attributes = info.get("attributes") if isinstance(info.get("attributes"), dict) else {}
    if info.get("vip") or (isinstance(attributes, dict) and attributes.get("vip") == "1"):
        parts.append("V I P customer.")
    if priority >= 5:
        parts.append(f"Priority {priority}.")
    reason = info.get("reason")
    if isinstance(reason, str) and reason:
        parts.append(f"Reason: {reason}.")
    parts.append(f"Waited {round(waited_s)} seconds.")
    return " ".join(parts)


def whisper(text: str) -> str:
    response = VoiceResponse()
    response.say(text, language="en-US")
    return str(response)


def hangup() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)
