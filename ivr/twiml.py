"""TwiML for engine steps, built with the twilio library's VoiceResponse.

This is the only module that knows TwiML. Prompts are <Play>ed when a pre-rendered
recording exists (a sentence with run-time numbers: when every fragment of it exists) and
<Say>-d otherwise; a transfer is rendered by a pluggable function so the queueing package
can route calls its own way. A voice menu becomes <Connect><Stream> to our `/media`
websocket when `voice_ok` says speech can serve it, else its keypad <Gather>.

`Renderer.render` (one engine step, on every IVR webhook) builds its TwiML from strings:
twilio's VoiceResponse and ElementTree cost ~45 us for a three-prompt menu, the strings a
few. The output is byte for byte what VoiceResponse writes (attributes sorted, the same
escaping); tests/ivr/test_twiml_strings.py renders every step of the demo flow both ways.
`speak` and `hold_in_queue` still take VoiceResponse targets for the other modules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import quote, urlencode

from twilio.twiml.voice_response import Gather as TwimlGather
from twilio.twiml.voice_response import VoiceResponse

from config.menus import Flow
from ivr.engine import Gather, Hangup, RecordMessage, Say, Session, Step, Transfer, node_prompts
from speech.prompts import Fragment, spoken_fragments

PromptUrl = Callable[[str, str], str | None]
TransferRenderer = Callable[[VoiceResponse, Transfer, Session, "Renderer"], None]
# Whether speech can serve this voice menu now (a model for the language, its prompt
# rendered, recogniser capacity); False: the keypad <Gather>.
VoiceCheck = Callable[[Gather, Session], bool]
MEDIA_PATH = "/media"
KEYPAD_SUFFIX = "/keypad"  # the <Connect action>: the keypad menu if the stream ends unanswered


def no_prerendered(_text: str, _lang: str) -> str | None:
    return None


def no_voice(_gather: Gather, _session: Session) -> bool:
    return False


XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
_HAS_DIGIT = re.compile(r"\d")


def escape_text(text: str) -> str:
    """Element text, escaped as ElementTree writes it."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


_ATTR_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\r": "&#13;",
        "\n": "&#10;",
        "\t": "&#09;",
    }
)


def escape_attr(value: str) -> str:
    """An attribute value, escaped as ElementTree writes it."""
    return value.translate(_ATTR_ESCAPES)


def element(tag: str, attrs: dict[str, str], inner: str | None = None) -> str:
    """One TwiML element as VoiceResponse writes it: attributes sorted by name, text
    already escaped, `<Tag />` when empty."""
    head = "".join(f' {k}="{escape_attr(attrs[k])}"' for k in sorted(attrs))
    if inner is None:
        return f"<{tag}{head} />"
    return f"<{tag}{head}>{inner}</{tag}>"


def document(inner: str) -> str:
    if not inner:
        return f"{XML_DECLARATION}<Response />"
    return f"{XML_DECLARATION}<Response>{inner}</Response>"


@lru_cache(maxsize=4096)
def _fragments(text: str, lang: str) -> tuple[Fragment, ...] | None:
    return spoken_fragments(text, lang)


def websocket_url(base_url: str, path: str) -> str:
    """wss:// for an https base, ws:// for http (local runs and the emulator)."""
    if base_url.startswith("https://"):
        return "wss://" + base_url.removeprefix("https://") + path
    return "ws://" + base_url.removeprefix("http://") + path


SAID_MAX = 2048  # <Say> elements kept per renderer (speech off)


@lru_cache(maxsize=4096)
def _node_url_head(base_url: str, node: str, suffix: str) -> str:
    return f"{base_url}/ivr/{quote(node, safe='')}{suffix}?s="


@dataclass(frozen=True)
class Renderer:
    flow: Flow
    base_url: str
    prompt_url: PromptUrl = no_prerendered
    transfer: TransferRenderer | None = None
    voice_ok: VoiceCheck = no_voice
    _said: dict[tuple[str, str], str] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def url(self, path: str, **query: str | int) -> str:
        q = urlencode({k: str(v) for k, v in query.items()})
        return f"{self.base_url}{path}" + (f"?{q}" if q else "")

    def node_url(self, node: str, seq: int, suffix: str = "") -> str:
        """`url(f"/ivr/{node}{suffix}", s=seq)`, the part before the number built once."""
        return _node_url_head(self.base_url, node, suffix) + str(seq)

    def recorded(self, say: Say) -> list[str] | None:
        """URLs that play `say` (its own recording, or one per fragment of a sentence with
        numbers in it), or None: some piece is not rendered, say it with <Say>."""
        if self.prompt_url is no_prerendered:
            return None
        url = self.prompt_url(say.text, say.lang)
        if url:
            return [url]
        if not _HAS_DIGIT.search(say.text):
            return None
        fragments = _fragments(say.text, say.lang)
        if not fragments:
            return None
        urls = [self.prompt_url(f.text, say.lang) for f in fragments]
        return [u for u in urls if u] if all(urls) else None

    def speak(self, target: VoiceResponse | TwimlGather, say: Say) -> None:
        recorded = self.recorded(say)
        if recorded:
            for url in recorded:
                target.play(url)
            return
        voice = self.flow.say_voice.get(say.lang)
        language = self.flow.say_language.get(say.lang, say.lang)
        if voice:
            target.say(say.text, language=language, voice=voice)
        else:
            target.say(say.text, language=language)

    def speak_xml(self, say: Say) -> str:
        """`speak` as a string: <Play> per recorded piece, else <Say>.

        With no pre-rendered prompts (speech off) the answer depends on the text and the
        language only, and is kept (at most SAID_MAX, then started afresh); with prompts,
        one may appear on disk at any time, so it is looked up every time."""
        if self.prompt_url is not no_prerendered:
            return self._speak_xml(say)
        key = (say.text, say.lang)
        said = self._said.get(key)
        if said is None:
            said = self._speak_xml(say)
            if len(self._said) >= SAID_MAX:
                self._said.clear()
            self._said[key] = said
        return said

    def _speak_xml(self, say: Say) -> str:
        recorded = self.recorded(say)
        if recorded:
            return "".join(f"<Play>{escape_text(url)}</Play>" for url in recorded)
        attrs = {"language": self.flow.say_language.get(say.lang, say.lang)}
        voice = self.flow.say_voice.get(say.lang)
        if voice:
            attrs["voice"] = voice
        return element("Say", attrs, escape_text(say.text))

    def render(self, step: Step) -> str:
        seq = step.session.seq
        parts: list[str] = []
        for verb in step.verbs:
            if isinstance(verb, Say):
                parts.append(self.speak_xml(verb))
            elif isinstance(verb, Gather) and verb.voice and self.voice_ok(verb, step.session):
                parts.append(self.connect_stream(verb, step.session))
            elif isinstance(verb, Gather):
                attrs = {
                    "action": self.node_url(verb.node, seq),
                    "actionOnEmptyResult": "true",
                    "input": "dtmf",
                    "method": "POST",
                    "timeout": str(verb.timeout_s),
                }
                if verb.num_digits:
                    attrs["numDigits"] = str(verb.num_digits)
                if verb.finish_on_key:
                    attrs["finishOnKey"] = verb.finish_on_key
                inner = "".join(self.speak_xml(prompt) for prompt in verb.prompts)
                parts.append(element("Gather", attrs, inner))
            elif isinstance(verb, Transfer):
                if self.transfer is None:
                    parts.append(enqueue_xml(self, verb.queue, step.session.lang))
                else:
                    parts.append(_library_fragment(self.transfer, verb, step.session, self))
            elif isinstance(verb, RecordMessage):
                attrs = {
                    "action": self.node_url(verb.node, seq),
                    "finishOnKey": "#",
                    "maxLength": str(verb.max_length_s),
                    "method": "POST",
                    "playBeep": "true",
                    "timeout": "5",
                }
                parts.append(element("Record", attrs))
            elif isinstance(verb, Hangup):
                parts.append("<Hangup />")
        return document("".join(parts))

    def connect_stream(self, verb: Gather, session: Session) -> str:
        """A voice menu: whatever comes before the node's own prompt is said here; the
        prompt itself is played by our websocket over the stream, which can stop it when
        the caller speaks. The parameters tell the websocket which call, node, step and
        language it serves; if the stream ends without the websocket moving the call on,
        Twilio requests the action URL, which answers with the keypad menu."""
        node = self.flow.nodes.get(verb.node)
        own = node_prompts(self.flow, node, session.lang) if node is not None else ()
        before = verb.prompts[: len(verb.prompts) - len(own)] if own else verb.prompts
        said = "".join(self.speak_xml(say) for say in before)
        parameters = "".join(
            element("Parameter", {"name": name, "value": value})
            for name, value in (
                ("call", session.call_sid),
                ("node", verb.node),
                ("s", str(session.seq)),
                ("lang", session.lang),
            )
        )
        stream = element("Stream", {"url": websocket_url(self.base_url, MEDIA_PATH)}, parameters)
        action = self.node_url(verb.node, session.seq, KEYPAD_SUFFIX)
        return said + element("Connect", {"action": action, "method": "POST"}, stream)


def _library_fragment(
    transfer: TransferRenderer, verb: Transfer, session: Session, r: Renderer
) -> str:
    """A pluggable transfer renderer writes into a VoiceResponse; splice its verbs in."""
    response = VoiceResponse()
    transfer(response, verb, session, r)
    text = str(response).removeprefix(XML_DECLARATION)
    if text == "<Response />":
        return ""
    return text.removeprefix("<Response>").removesuffix("</Response>")


def enqueue_xml(r: Renderer, queue: str, lang: str) -> str:
    """`hold_in_queue` as a string."""
    attrs = {
        "action": r.url("/queue/left", lang=lang, q=queue),
        "method": "POST",
        "waitUrl": r.url("/queue/hold", lang=lang, q=queue),
        "waitUrlMethod": "POST",
    }
    return element("Enqueue", attrs, escape_text(f"hl-{queue}"))


def hold_transfer(response: VoiceResponse, verb: Transfer, session: Session, r: Renderer) -> None:
    """Our queue: the call was joined in Redis before answering; it waits in a Twilio
    <Enqueue> whose waitUrl is our hold loop, until the router redirects it to an agent."""
    hold_in_queue(response, r, verb.queue, session.lang)


def hold_in_queue(response: VoiceResponse, r: Renderer, queue: str, lang: str) -> None:
    response.enqueue(
        f"hl-{queue}",
        action=r.url("/queue/left", lang=lang, q=queue),
        method="POST",
        wait_url=r.url("/queue/hold", lang=lang, q=queue),
        wait_url_method="POST",
    )


def fallback_response(
    flow: Flow | None,
    lang: str | None,
    *,
    emergency_number: str | None,
    emergency_queue: str,
) -> str:
    """Valid TwiML that still serves the caller when something broke: apologise, then a person."""
    response = VoiceResponse()
    if flow is not None:
        language = lang if lang in flow.languages else flow.default_language
        langs = [language] if lang in flow.languages else list(flow.languages)
        for lg in langs:
            response.say(flow.message("error", lg), language=flow.say_language.get(lg, lg))
    else:
        response.say(
            "We are sorry, we are having technical difficulties. "
            "We are connecting you to an adviser.",
            language="en-US",
        )
    if emergency_number:
        response.dial(emergency_number, timeout=30)
    else:
        response.enqueue(emergency_queue)
    return str(response)
