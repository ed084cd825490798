"""TwiML for engine steps, built with the twilio library's VoiceResponse.

This is the only module that knows TwiML. Prompts are <Play>ed when a pre-rendered
recording exists (a sentence with run-time numbers: when every fragment of it exists) and
<Say>-d otherwise; a transfer is rendered by a pluggable function so the queueing package
can route calls its own way. A voice menu becomes <Connect><Stream> to our `/media`
websocket when `voice_ok` says speech can serve it, else its keypad <Gather>.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from twilio.twiml.voice_response import Gather as TwimlGather
from twilio.twiml.voice_response import VoiceResponse

from config.menus import Flow
from ivr.engine import Gather, Hangup, RecordMessage, Say, Session, Step, Transfer, node_prompts
from speech.prompts import spoken_fragments

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


def websocket_url(base_url: str, path: str) -> str:
    """wss:// for an https base, ws:// for http (local runs and the emulator)."""
    if base_url.startswith("https://"):
        return "wss://" + base_url.removeprefix("https://") + path
    return "ws://" + base_url.removeprefix("http://") + path


@dataclass(frozen=True)
class Renderer:
    flow: Flow
    base_url: str
    prompt_url: PromptUrl = no_prerendered
    transfer: TransferRenderer | None = None
    voice_ok: VoiceCheck = no_voice

    def url(self, path: str, **query: str | int) -> str:
        q = urlencode({k: str(v) for k, v in query.items()})
        return f"{self.base_url}{path}" + (f"?{q}" if q else "")

    def node_url(self, node: str, seq: int, suffix: str = "") -> str:
        return self.url(f"/ivr/{quote(node, safe='')}{suffix}", s=seq)

    def recorded(self, say: Say) -> list[str] | None:
        """URLs that play `say` (its own recording, or one per fragment of a sentence with
        numbers in it), or None: some piece is not rendered, say it with <Say>."""
        url = self.prompt_url(say.text, say.lang)
        if url:
            return [url]
        if not any(c.isdigit() for c in say.text):
            return None
        fragments = spoken_fragments(say.text, say.lang)
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

    def render(self, step: Step) -> str:
        response = VoiceResponse()
        seq = step.session.seq
        for verb in step.verbs:
            if isinstance(verb, Say):
                self.speak(response, verb)
            elif isinstance(verb, Gather) and verb.voice and self.voice_ok(verb, step.session):
                self.connect_stream(response, verb, step.session)
            elif isinstance(verb, Gather):
                gather = response.gather(
                    input="dtmf",
                    action=self.node_url(verb.node, seq),
                    method="POST",
                    timeout=verb.timeout_s,
                    action_on_empty_result=True,
                    **({"num_digits": verb.num_digits} if verb.num_digits else {}),
                    **({"finish_on_key": verb.finish_on_key} if verb.finish_on_key else {}),
                )
                for prompt in verb.prompts:
                    self.speak(gather, prompt)
            elif isinstance(verb, Transfer):
                (self.transfer or hold_transfer)(response, verb, step.session, self)
            elif isinstance(verb, RecordMessage):
                response.record(
                    action=self.node_url(verb.node, seq),
                    method="POST",
                    max_length=verb.max_length_s,
                    finish_on_key="#",
                    play_beep=True,
                    timeout=5,
                )
            elif isinstance(verb, Hangup):
                response.hangup()
        return str(response)

    def connect_stream(self, response: VoiceResponse, verb: Gather, session: Session) -> None:
        """A voice menu: whatever comes before the node's own prompt is said here; the
        prompt itself is played by our websocket over the stream, which can stop it when
        the caller speaks. The parameters tell the websocket which call, node, step and
        language it serves; if the stream ends without the websocket moving the call on,
        Twilio requests the action URL, which answers with the keypad menu."""
        node = self.flow.nodes.get(verb.node)
        own = node_prompts(self.flow, node, session.lang) if node is not None else ()
        before = verb.prompts[: len(verb.prompts) - len(own)] if own else verb.prompts
        for say in before:
            self.speak(response, say)
        connect = response.connect(
            action=self.node_url(verb.node, session.seq, KEYPAD_SUFFIX), method="POST"
        )
        stream = connect.stream(url=websocket_url(self.base_url, MEDIA_PATH))
        for name, value in (
            ("call", session.call_sid),
            ("node", verb.node),
            ("s", str(session.seq)),
            ("lang", session.lang),
        ):
            stream.parameter(name=name, value=value)


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
