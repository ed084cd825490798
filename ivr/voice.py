"""Voice menus over Twilio Media Streams, and offline transcription of recordings.

A menu node with `voice: true` is answered (by `ivr.twiml.Renderer`) with
`<Connect action=".../keypad"><Stream url="wss://.../media">` whose parameters name the
call, node, step number and language. This module serves that websocket:

1. the upgrade request must carry a valid `X-Twilio-Signature` (HMAC over the wss URL,
   no parameters, as Twilio signs Media Streams), else 403;
2. messages are parsed at the edge (`speech.media_stream`); malformed or out-of-order
   ones are logged and skipped; the `start` message's parameters must match the call's
   session in Redis at that very step, else the socket is closed (a stale or forged
   stream changes nothing);
3. each turn plays the node's rendered prompt as 20 ms frames with a mark, clears it when
   the caller speaks, accepts `dtmf` keys, and decodes with vosk on the recogniser's
   bounded pool (`speech.voice_turn.run_turn`);
4. a confident match (or an option key) is stepped through the engine exactly once
   (`ivr.webhooks.answer_step`: `SessionStore.advance` with the step number) and the call
   continues through REST with that step's TwiML. Nothing heard or nothing understood
   re-prompts (with the no-input / invalid message) up to the node's `retries`; a
   low-confidence guess (CONFIRM) is treated like "not understood": asking again costs
   a turn, a wrong routing costs far more, and the menus define no confirmation prompts
   or yes/no phrases to build a confirmation from. After the retries, no model,
   no capacity or a stream that goes quiet: the `Keypad` step (the same menu as a
   keypad <Gather>).

Whatever fails in here, the socket closes without a step and Twilio requests the
`<Connect action>`, `/ivr/{node}/keypad`, which answers with the step stored for this
step number if there is one, else the keypad menu: the caller is never left in silence.

`transcribe_recording(url, lang=None)` fetches a recording from Twilio (bounded) and
transcribes it offline; None when it cannot (the survey comments call it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from config.menus import Flow, Node, NodeKind
from config.runtime import SETTINGS
from ivr.appkeys import FLOW_DEPS, SESSIONS, VOICE
from ivr.engine import Digits, Event, Keypad, Session, node_prompts
from ivr.http import twilio_webhook
from ivr.signature import SignatureChecker
from ivr.speech_hooks import SpeechHooks, cached_keys
from ivr.twilio_params import parse_call
from ivr.twilio_rest import TwilioRest
from ivr.twiml import KEYPAD_SUFFIX, MEDIA_PATH, websocket_url
from ivr.webhooks import answer_step, session_at_step, step_number
from speech.grammar import Grammar
from speech.matching import MatchKind, match
from speech.media_stream import Start
from speech.mulaw import WavError, wav_to_ulaw
from speech.prompts import PromptCache, RenderReport
from speech.recognizer import ModelRegistry, SpeechRecognizer
from speech.settings import SpeechSettings
from speech.voice_turn import TurnResult, run_turn, wait_for_start

log = logging.getLogger("hotline.ivr")

SIGNATURE_HEADER = "X-Twilio-Signature"
MAX_MESSAGE_BYTES = 64 * 1024  # a media message is ~250 bytes; Twilio never sends more
MAX_RECORDING_BYTES = 8 * 1024 * 1024  # ~8 minutes of 16-bit 8 kHz WAV
TWILIO_API_HOST = "api.twilio.com"


@dataclass(frozen=True)
class SpeechSetup:
    """What `create_app` needs to run speech. `registry=None` loads the models named by the
    environment (and the packaged Korean model) at start-up, in a thread; tests pass one
    loaded once per session."""

    settings: SpeechSettings
    registry: ModelRegistry | None = None
    render_at_startup: bool = True  # render missing prompts in the background
    idle_timeout_s: float = 3.0  # no message at all for this long: the media stopped
    max_stream_s: float = 300.0  # wall-clock limit of one media stream
    rest_timeout_s: float = 10.0


@dataclass(frozen=True)
class StreamParams:
    """The <Parameter>s of our <Stream>, checked against the start message."""

    call_sid: str
    node: str
    seq: int
    lang: str


def parse_stream_params(start: Start) -> StreamParams:
    p = start.custom_parameters
    call, node, seq, lang = (p.get(k, "") for k in ("call", "node", "s", "lang"))
    if call != start.call_sid:
        raise ValueError("the stream's call parameter does not match its callSid")
    if not seq.isdigit() or len(seq) > 6:
        raise ValueError("step number 's' is missing or malformed")
    if not node or not lang:
        raise ValueError("node or lang parameter missing")
    return StreamParams(call_sid=call, node=node, seq=int(seq), lang=lang)


@dataclass(frozen=True)
class TurnTiming:
    """One voice decision, for measurements (no transcript)."""

    call_sid: str
    outcome: str  # "option:<key>" (said or pressed), "keypad:<reason>"
    turns: int  # prompts played on this stream before the decision
    endpoint_ms: int  # audio from the end of the last word to vosk's final result
    decide_ms: float  # wall: final result -> the engine's step stored
    rest_ms: float  # wall: REST update request -> response
    barged_in: bool


@dataclass
class VoiceService:
    settings: SpeechSettings
    setup: SpeechSetup
    hooks: SpeechHooks
    cache: PromptCache
    recognizer: SpeechRecognizer | None
    rest: TwilioRest
    http: aiohttp.ClientSession
    upgrade_signatures: SignatureChecker
    account_sid: str
    auth_token: str = field(repr=False)
    api_hosts: frozenset[str] = frozenset({TWILIO_API_HOST})
    default_lang: str = ""
    sockets: set[web.WebSocketResponse] = field(default_factory=set)
    timings: list[TurnTiming] = field(default_factory=list)
    _grammars: dict[tuple[str, str], Grammar | None] = field(default_factory=dict)
    _audio: dict[tuple[str, str], bytes | None] = field(default_factory=dict)

    def grammar_for(self, node: Node, lang: str) -> Grammar | None:
        """The node's options as a grammar (option key -> phrases); built once per process."""
        key = (node.id, lang)
        if key not in self._grammars:
            options = {o.key: list(o.phrases.get(lang, ())) for o in node.options}
            options = {k: v for k, v in options.items() if v}
            rec = self.recognizer
            grammar = rec.registry.grammar(options, lang) if rec and options else None
            self._grammars[key] = grammar if grammar and grammar.phrases else None
        return self._grammars[key]

    async def audio(self, text: str, lang: str) -> bytes | None:
        """A rendered prompt's mu-law samples (read once in a thread, then kept)."""
        key = (text, lang)
        if self._audio.get(key) is None:
            self._audio[key] = await asyncio.to_thread(self.cache.load_ulaw, text, lang)
        return self._audio[key]

    async def node_audio(self, flow: Flow, node: Node, lang: str) -> bytes | None:
        parts = [await self.audio(p.text, p.lang) for p in node_prompts(flow, node, lang)]
        if not parts or any(p is None for p in parts):
            return None
        return b"".join(p for p in parts if p is not None)

    def record(self, timing: TurnTiming) -> None:
        self.timings.append(timing)
        del self.timings[:-1000]

    async def transcribe_recording(self, url: str, *, lang: str, call_sid: str = "") -> str | None:
        """Fetch a recording from Twilio (GET, at most MAX_RECORDING_BYTES) and transcribe it
        offline with the full vocabulary of the language's model. None: no model or
        capacity, the URL is not Twilio's, the fetch failed or the audio is not a WAV."""
        extra = {"call_sid": call_sid, "lang": lang}
        rec = self.recognizer
        if rec is None or not rec.available(lang):
            log.info("no speech model for the language; recording not transcribed", extra=extra)
            return None
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or parts.hostname not in self.api_hosts:
            log.warning("recording URL is not Twilio's; not fetched", extra=extra)
            return None
        blob = await self._fetch(url, extra)
        if blob is None:
            return None
        try:
            ulaw = await asyncio.to_thread(wav_to_ulaw, blob)
        except (WavError, ValueError):
            log.warning("recording is not a readable WAV; not transcribed", extra=extra)
            return None
        words = await rec.transcribe(ulaw, lang, call_sid=call_sid)
        if words is None:
            return None
        return " ".join(w.word for w in words)

    async def _fetch(self, url: str, extra: Mapping[str, str]) -> bytes | None:
        headers = {"Authorization": aiohttp.encode_basic_auth(self.account_sid, self.auth_token)}
        try:
            async with self.http.get(url, headers=headers) as resp:
                if resp.status != 200:
                    log.warning("recording fetch failed", extra={**extra, "status": resp.status})
                    return None
                if (resp.content_length or 0) > MAX_RECORDING_BYTES:
                    log.warning("recording too large; not transcribed", extra=extra)
                    return None
                body = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > MAX_RECORDING_BYTES:
                        log.warning("recording too large; not transcribed", extra=extra)
                        return None
                return bytes(body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("recording fetch failed", extra={**extra, "error": type(exc).__name__})
            return None


# The services of the apps running in this process, newest last (one in production; tests
# may run several). `transcribe_recording(url)` uses the newest: the models are per process.
_RUNNING: list[VoiceService] = []


async def transcribe_recording(url: str, *, lang: str | None = None) -> str | None:
    """A recorded answer (a survey comment) as text, transcribed on our own machine, or
    None when speech is off, the language has no model, no capacity is left, or the
    recording cannot be fetched (keep the recording either way). `lang=None`: the flow's
    default language if it has a model, else the first language that has one."""
    if not _RUNNING:
        return None
    svc = _RUNNING[-1]
    rec = svc.recognizer
    if rec is None:
        return None
    if lang is None:
        languages = rec.registry.languages
        lang = svc.default_lang if svc.default_lang in languages else languages[0]
    return await svc.transcribe_recording(url, lang=lang)


# --- start-up -----------------------------------------------------------------------------


def _log_progress(total_hint: list[int]) -> Callable[[int, int], None]:
    step = [0]

    def progress(done: int, total: int) -> None:
        total_hint[0] = total
        if total and (done == total or done >= step[0]):
            log.info("rendering prompts", extra={"done": done, "total": total})
            step[0] = done + max(1, total // 4)

    return progress


async def render_prompts(
    cache: PromptCache, hooks: SpeechHooks, items: list[tuple[str, str]]
) -> RenderReport:
    """Render what is missing (in a child process) and let the Renderer <Play> it."""
    started = time.monotonic()
    report = await cache.render_missing(items, progress=_log_progress([0]))
    hooks.mark_rendered(report.rendered)
    log.info(
        "prompts ready",
        extra={
            "rendered": len(report.rendered),
            "cached": len(report.cached),
            "failed": len(report.failed),
            "skipped": len(report.skipped),
            "seconds": round(time.monotonic() - started, 2),
        },
    )
    return report


def voice_context(
    setup: SpeechSetup, hooks: SpeechHooks, items: list[tuple[str, str]]
) -> Callable[[web.Application], AbstractAsyncContextManager[None]]:
    """Prompt cache, models, recogniser and REST client; prompts rendered in the background."""

    @asynccontextmanager
    async def context(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        sp = setup.settings
        cache = await asyncio.to_thread(PromptCache, sp.prompt_dir, sp.voices)
        hooks.attach_prompts(cache, await asyncio.to_thread(cached_keys, sp.prompt_dir))
        registry = setup.registry
        if registry is None:
            registry = await asyncio.to_thread(ModelRegistry.from_env)
        recognizer = None
        if registry.languages:
            recognizer = SpeechRecognizer(
                registry, max_sessions=sp.max_sessions, workers=sp.workers, config=sp.session
            )
        else:
            log.warning("no speech model loaded: every menu is a keypad menu")
        hooks.attach_recognizer(recognizer)
        rest = TwilioRest(
            settings.account_sid,
            settings.auth_token,
            api_base=settings.twilio_api_base,
            timeout_s=setup.rest_timeout_s,
        )
        hosts = {TWILIO_API_HOST}
        if settings.twilio_api_base:
            hosts.add(urlsplit(settings.twilio_api_base).hostname or TWILIO_API_HOST)
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        svc = VoiceService(
            settings=sp,
            setup=setup,
            hooks=hooks,
            cache=cache,
            recognizer=recognizer,
            rest=rest,
            http=http,
            upgrade_signatures=SignatureChecker(
                settings.auth_token, websocket_url(settings.base_url, "")
            ),
            account_sid=settings.account_sid,
            auth_token=settings.auth_token,
            api_hosts=frozenset(hosts),
            default_lang=app[FLOW_DEPS].flow.default_language,
        )
        app[VOICE] = svc
        _RUNNING.append(svc)
        task: asyncio.Task[RenderReport] | None = None
        if setup.render_at_startup and items:
            task = asyncio.get_running_loop().create_task(render_prompts(cache, hooks, items))
        try:
            yield
        finally:
            _RUNNING.remove(svc)
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            await close_sockets(app)
            hooks.detach()
            await rest.aclose()
            await http.close()
            if recognizer is not None:
                await asyncio.to_thread(recognizer.shutdown)

    return context


async def close_sockets(app: web.Application) -> None:
    """On shutdown: close the media streams still open (Twilio then asks the keypad URL)."""
    svc = app.get(VOICE)
    if svc is None:
        return
    for ws in list(svc.sockets):
        await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"shutting down")


# --- the websocket -----------------------------------------------------------------------


WRITE_TIMEOUT_S = 5.0  # a media write blocked this long means Twilio stopped reading


class _Link:
    """receive()/send() for `run_turn` over one aiohttp websocket, with an idle timeout."""

    def __init__(self, ws: web.WebSocketResponse, idle_s: float) -> None:
        self.ws = ws
        self.idle_s = idle_s
        self.idle_expired = False
        self.closed = False

    async def receive(self) -> str | None:
        if self.closed:
            return None
        try:
            msg = await self.ws.receive(timeout=self.idle_s)
        except TimeoutError:
            self.idle_expired = self.closed = True
            return None
        if msg.type is aiohttp.WSMsgType.TEXT:
            return str(msg.data)
        if msg.type is aiohttp.WSMsgType.BINARY:
            return "\0binary"  # not JSON: logged and skipped like any malformed message
        self.closed = True
        return None

    async def send(self, text: str) -> None:
        """Send, but never wait on a peer that stopped reading for more than WRITE_TIMEOUT_S:
        the stream is then treated as gone (the <Connect action> keypad menu takes over)."""
        if self.closed or self.ws.closed:
            return
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                await self.ws.send_str(text)
        except TimeoutError:
            log.warning("media stream stopped reading; giving the stream up")
            self.closed = True

    async def drain(self, timeout_s: float) -> None:
        """After the REST update: wait (bounded) for Twilio to stop the stream."""
        with suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while await self.receive() is not None:
                    pass


async def media(request: web.Request) -> web.StreamResponse:
    svc = request.app.get(VOICE)
    if svc is None:
        raise web.HTTPNotFound()
    signature = request.headers.get(SIGNATURE_HEADER)
    if not svc.upgrade_signatures.is_valid(request.path_qs, {}, signature):
        log.warning(
            "media stream signature rejected",
            extra={"remote": request.remote, "signature_present": bool(signature)},
        )
        raise web.HTTPForbidden(text="invalid signature")
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES)
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(text="websocket upgrade expected")
    await ws.prepare(request)
    link = _Link(ws, svc.setup.idle_timeout_s)
    svc.sockets.add(ws)
    try:
        async with asyncio.timeout(svc.setup.max_stream_s):
            await _serve(request, svc, link)
    except TimeoutError:
        log.warning("media stream ran past its time limit; closed (keypad menu follows)")
    except Exception:
        log.exception("media stream failed; closed (keypad menu follows)")
    finally:
        svc.sockets.discard(ws)
        await ws.close()
    return ws


async def _serve(request: web.Request, svc: VoiceService, link: _Link) -> None:
    start = await wait_for_start(link.receive)
    if start is None:
        return
    try:
        params = parse_stream_params(start)
    except ValueError as exc:
        log.warning("media stream start refused", extra={"error": str(exc)})
        return
    deps = request.app[FLOW_DEPS]
    extra = {"call_sid": params.call_sid, "node": params.node, "seq": params.seq}
    stored = await request.app[SESSIONS].load(params.call_sid)
    node = deps.flow.nodes.get(params.node)
    if (
        stored is None
        or stored.seq != params.seq
        or stored.session.node != params.node
        or node is None
        or node.kind is not NodeKind.MENU
    ):
        log.warning("media stream for a call not at this step; closed", extra=extra)
        return
    session = stored.session
    decided = await _listen(svc, deps.flow, link, start, node, session)
    if decided is None:
        return  # the caller hung up, or Twilio ended the stream
    event, turn, t_final, turns = decided
    response = await answer_step(request, deps, params.seq, session, event)
    body = response.text or ""
    t_stored = time.monotonic()
    try:
        await svc.rest.client.calls(params.call_sid).update_async(twiml=body)
    except Exception as exc:  # twilio's errors, aiohttp's, timeouts: the action URL serves
        log.warning(
            "REST update failed; the <Connect action> serves the stored step",
            extra={**extra, "error": type(exc).__name__},
        )
        return
    t_rest = time.monotonic()
    timing = TurnTiming(
        call_sid=params.call_sid,
        outcome=_describe(event),
        turns=turns,
        endpoint_ms=_endpoint_ms(turn),
        decide_ms=round((t_stored - t_final) * 1000, 1),
        rest_ms=round((t_rest - t_stored) * 1000, 1),
        barged_in=bool(turn and turn.barged_in),
    )
    svc.record(timing)
    log.info("voice menu answered", extra={**extra, **dataclasses.asdict(timing)})
    await link.drain(2.0)


def _describe(event: Event) -> str:
    if isinstance(event, Digits):
        return f"option:{event.digits}"
    if isinstance(event, Keypad):
        return f"keypad:{event.reason or 'unavailable'}"
    return type(event).__name__


def _endpoint_ms(turn: TurnResult | None) -> int:
    if turn is None or turn.utterance is None or not turn.utterance.words:
        return 0
    u = turn.utterance
    return max(0, u.audio_ms - round(u.words[-1].end * 1000))


async def _listen(
    svc: VoiceService, flow: Flow, link: _Link, start: Start, node: Node, session: Session
) -> tuple[Event, TurnResult | None, float, int] | None:
    """Turns until an answer: (event for the engine, last turn, when it was decided,
    prompts played)."""
    lang = session.lang
    extra = {"call_sid": session.call_sid, "node": node.id, "lang": lang}
    rec = svc.recognizer
    grammar = svc.grammar_for(node, lang)
    prompt = await svc.node_audio(flow, node, lang)
    if rec is None or grammar is None or prompt is None:
        log.info("speech cannot serve this menu; keypad menu", extra=extra)
        return Keypad(), None, time.monotonic(), 0
    keys = {o.key for o in node.options}
    before = b""
    attempts = 0
    while True:
        recognition = rec.try_acquire(grammar, call_sid=session.call_sid)
        if recognition is None:
            return Keypad(), None, time.monotonic(), attempts  # at capacity (logged)
        async with recognition:
            turn = await run_turn(
                link.receive,
                link.send,
                recognition,
                start.stream_sid,
                prompt_ulaw=before + prompt,
                mark_name=f"prompt-{attempts}",
            )
        now = time.monotonic()
        if turn.kind == "hangup":
            if link.idle_expired:
                log.warning("media stopped arriving; keypad menu", extra=extra)
                return Keypad(), turn, now, attempts + 1
            return None
        reason: str
        if turn.kind == "dtmf" and turn.digit is not None:
            if turn.digit.value in keys:
                return Digits(turn.digit.value), turn, now, attempts + 1
            reason = "invalid"
        elif turn.utterance is not None:
            found = match(
                turn.utterance, grammar, accept=svc.settings.accept, reject=svc.settings.reject
            )
            if found.kind is MatchKind.MATCHED and found.option in keys:
                return Digits(found.option), turn, now, attempts + 1
            reason = "no_input" if found.kind is MatchKind.NO_INPUT else "invalid"
            log.info(
                "voice menu: asking again",
                extra={
                    **extra,
                    "match": found.kind.value,
                    "option": found.option,
                    "score": found.score,
                    "attempt": attempts,
                },
            )
        else:
            reason = "invalid"
        attempts += 1
        if attempts > node.retries:
            return Keypad(reason), turn, now, attempts
        message = flow.message(reason, lang)
        before = (await svc.audio(message, lang) or b"") if message else b""


# --- the <Connect action>: the keypad menu, or the step the websocket already took --------


@twilio_webhook
async def keypad(request: web.Request, params: Mapping[str, str]) -> web.Response:
    node_id = request.match_info["node"]
    seq = step_number(request)
    call = parse_call(params)
    session = await session_at_step(request, call.call_sid, node_id, seq)
    if isinstance(session, web.Response):
        return session
    log.info(
        "media stream ended without an answer; keypad menu",
        extra={"call_sid": call.call_sid, "node": node_id},
    )
    return await answer_step(request, request.app[FLOW_DEPS], seq, session, Keypad())


def routes() -> list[web.RouteDef]:
    return [
        web.get(MEDIA_PATH, media),
        web.post("/ivr/{node}" + KEYPAD_SUFFIX, keypad),
    ]
