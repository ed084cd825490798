"""Pre-rendered prompts: pyttsx3 (espeak-ng) -> 8 kHz mono mu-law WAV, cached by hash.

- `PromptCache(directory, voices)`: `key_for`/`path_for`/`url_for(text, lang)` name a
  prompt by a hash of (text, language, voice, rate), so an unchanged prompt is never
  rendered twice and a changed one (text, voice or rate) gets a new file and a new URL
  (which is why the files can be served as immutable).
- `render_missing(items, progress=...)` renders what is missing in a child process
  (`speech.tts_worker`), off the event loop; one batch at a time per cache (pyttsx3 is not
  thread-safe, and one espeak process per batch is plenty: ~20 ms per prompt).
- `available` is False (with one clear warning) when espeak-ng is not installed: callers
  use `<Say>`; nothing crashes.
- `prompt_handler(directory)`: aiohttp handler for `GET /prompts/{name}` with
  `Cache-Control: public, max-age=31536000, immutable`, an ETag and 304 on If-None-Match.
- `spoken_fragments(sentence, lang)`: a sentence with run-time numbers split into
  fragments that can each be rendered ahead of time, or None (say it with `<Say>`).
"""

from __future__ import annotations

import asyncio
import ctypes.util
import hashlib
import json
import logging
import re
import shutil
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from aiohttp import web

from speech.mulaw import wav_to_ulaw

log = logging.getLogger("hotline.speech")

KEY_VERSION = 1  # bump when the rendering pipeline changes what a key's file sounds like
PROMPT_ROUTE = "/prompts/{name}"
CACHE_CONTROL = "public, max-age=31536000, immutable"
_NAME = re.compile(r"^([0-9a-f]{32})\.wav$")
_WORKER_CWD = str(Path(__file__).resolve().parents[1])  # where `-m speech.tts_worker` imports


@dataclass(frozen=True)
class VoiceSettings:
    """pyttsx3/espeak-ng voice id (as in `espeak-ng --voices`, variants like "ko+f2") and
    words per minute."""

    voice: str
    rate: int = 150

    def __post_init__(self) -> None:
        if not self.voice:
            raise ValueError("voice must not be empty")
        if not 60 <= self.rate <= 400:
            raise ValueError(f"rate {self.rate} is outside 60..400 words per minute")


DEFAULT_VOICES: Mapping[str, VoiceSettings] = {
    "ko": VoiceSettings("ko", 150),
    "en": VoiceSettings("en-us", 160),
    "zh": VoiceSettings("cmn", 150),
}


def espeak_available() -> bool:
    """espeak-ng's shared library (what pyttsx3 loads) or its command is installed."""
    return bool(ctypes.util.find_library("espeak-ng") or shutil.which("espeak-ng"))


def prompt_key(text: str, lang: str, voice: VoiceSettings) -> str:
    """A stable name: sha256 over the inputs (and KEY_VERSION), 32 hex characters."""
    material = json.dumps(
        [KEY_VERSION, " ".join(text.split()), lang, voice.voice, voice.rate], ensure_ascii=False
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


@dataclass
class RenderReport:
    rendered: list[str] = field(default_factory=list)  # keys
    cached: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # key -> error
    skipped: list[str] = field(default_factory=list)  # espeak-ng missing


ProgressFn = Callable[[int, int], None]  # (done, total)


def progress_bar(out: TextIO | None = None, *, width: int = 30) -> ProgressFn:
    """A `progress` callback drawing `[#####.....] 12/40` on one line (for the CLI)."""
    stream = out or sys.stderr

    def draw(done: int, total: int) -> None:
        filled = width * done // total if total else width
        end = "\n" if done >= total else ""
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}{end}")
        stream.flush()

    return draw


class PromptCache:
    def __init__(
        self,
        directory: Path,
        voices: Mapping[str, VoiceSettings] | None = None,
        *,
        available: bool | None = None,
        python: str = sys.executable,
    ) -> None:
        self.directory = Path(directory)
        self.voices = dict(DEFAULT_VOICES if voices is None else voices)
        self.available = espeak_available() if available is None else available
        self._python = python
        self._lock = asyncio.Lock()
        if not self.available:
            log.warning(
                "espeak-ng is not installed: prompts cannot be rendered, callers hear <Say> "
                "(install the Debian package espeak-ng)",
                extra={"prompt_dir": str(self.directory)},
            )

    def voice_for(self, lang: str) -> VoiceSettings:
        return self.voices.get(lang) or VoiceSettings(lang)

    def key_for(self, text: str, lang: str) -> str:
        return prompt_key(text, lang, self.voice_for(lang))

    def path_for(self, text: str, lang: str) -> Path:
        return self.directory / f"{self.key_for(text, lang)}.wav"

    def url_for(self, text: str, lang: str) -> str:
        return PROMPT_ROUTE.format(name=f"{self.key_for(text, lang)}.wav")

    def exists(self, text: str, lang: str) -> bool:
        return self.path_for(text, lang).is_file()

    def load_ulaw(self, text: str, lang: str) -> bytes | None:
        """The prompt's mu-law samples (for playing over a Media Stream), None if missing.
        Blocking file read: call it through `asyncio.to_thread` on the event loop."""
        path = self.path_for(text, lang)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        return wav_to_ulaw(blob)

    async def render_missing(
        self, items: Iterable[tuple[str, str]], *, progress: ProgressFn | None = None
    ) -> RenderReport:
        """Render every (text, lang) whose file is missing; reports what happened."""
        report = RenderReport()
        jobs = await asyncio.to_thread(self._plan, list(items), report)
        total = len(jobs)
        if progress:
            progress(0, total)
        if not jobs:
            return report
        if not self.available:
            report.skipped.extend(jobs)
            return report
        async with self._lock:  # one espeak batch at a time per cache
            await self._run_worker(jobs, report, progress, total)
        return report

    def _plan(
        self, items: list[tuple[str, str]], report: RenderReport
    ) -> dict[str, dict[str, object]]:
        """What to render (blocking: stats the cache directory)."""
        jobs: dict[str, dict[str, object]] = {}
        for text, lang in items:
            if not text.strip():
                continue
            key = self.key_for(text, lang)
            if key in jobs or key in report.cached:
                continue
            if (self.directory / f"{key}.wav").is_file():
                report.cached.append(key)
                continue
            voice = self.voice_for(lang)
            jobs[key] = {
                "text": text,
                "voice": voice.voice,
                "rate": voice.rate,
                "out": str(self.directory / f"{key}.wav"),
            }
        return jobs

    async def _run_worker(
        self,
        jobs: Mapping[str, Mapping[str, object]],
        report: RenderReport,
        progress: ProgressFn | None,
        total: int,
    ) -> None:
        await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        by_out = {str(job["out"]): key for key, job in jobs.items()}
        proc = await asyncio.create_subprocess_exec(
            self._python,
            "-m",
            "speech.tts_worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            cwd=_WORKER_CWD,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            payload = "".join(json.dumps(j, ensure_ascii=False) + "\n" for j in jobs.values())
            proc.stdin.write(payload.encode("utf-8"))
            await proc.stdin.drain()
            proc.stdin.close()
            done = 0
            while line := await proc.stdout.readline():
                try:
                    reply = json.loads(line)
                    key = by_out[reply["out"]]
                except (ValueError, KeyError, TypeError):
                    continue
                if reply.get("ok"):
                    report.rendered.append(key)
                else:
                    report.failed[key] = str(reply.get("error", "unknown error"))
                done += 1
                if progress:
                    progress(done, total)
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        for key in jobs:
            if key not in report.rendered and key not in report.failed:
                report.failed[key] = f"renderer exited with {proc.returncode}"
        if report.failed:
            log.warning(
                "some prompts were not rendered; callers hear <Say> for them",
                extra={"failed": len(report.failed), "example": next(iter(report.failed.values()))},
            )


# --- serving ----------------------------------------------------------------------------------


def prompt_handler(directory: Path) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """`GET /prompts/{name}`: the file if `name` is `<32 hex>.wav` and exists, else 404."""
    root = Path(directory)

    async def handle(request: web.Request) -> web.StreamResponse:
        m = _NAME.match(request.match_info.get("name", ""))
        if m is None:
            raise web.HTTPNotFound()
        key = m.group(1)
        etag = f'"{key}"'
        headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
        path = root / f"{key}.wav"
        try:
            body = await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError):
            raise web.HTTPNotFound() from None
        inm = request.headers.get("If-None-Match", "")
        if inm.strip() == "*" or etag in {t.strip() for t in inm.split(",")}:
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type="audio/wav", headers=headers)

    return handle


def add_prompt_routes(app: web.Application, directory: Path) -> None:
    app.router.add_get(PROMPT_ROUTE, prompt_handler(directory))


# --- numbers spoken at run time -----------------------------------------------------------------

# Korean counters read with Sino-Korean numbers ("5분" = "오 분"), so "5" rendered alone and
# then "분" sound right. Native-Korean counters ("3번째", "2명", "3시") change the number's
# reading and are not assembled from fragments.
_SINO_COUNTERS: Mapping[str, tuple[str, ...]] = {"ko": ("분", "원", "초", "번", "일", "개월")}
_NATIVE_AFTER: Mapping[str, tuple[str, ...]] = {"ko": ("번째",)}
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


@dataclass(frozen=True)
class Fragment:
    text: str
    is_number: bool = False


def spoken_fragments(
    sentence: str, lang: str, *, max_number: int = 100
) -> tuple[Fragment, ...] | None:
    """Split a sentence with numbers into fragments that can each be rendered ahead of time
    (the text between numbers, and each number alone), or None: say it with `<Say>`.

    None when a number is bigger than `max_number` (balances, account numbers), has a
    decimal point or digit grouping, or is glued to a word whose reading depends on it
    (Korean native counters like "3번째"; any letters in other languages).
    """
    fragments: list[Fragment] = []
    pos = 0
    for m in _NUMBER.finditer(sentence):
        token = m.group(0)
        if not token.isdigit() or int(token) > max_number:
            return None
        rest = sentence[m.end() :]
        if rest and rest[0].isalpha():
            glued = rest.split(maxsplit=1)[0]
            if any(glued.startswith(n) for n in _NATIVE_AFTER.get(lang, ())):
                return None
            if not any(glued.startswith(c) for c in _SINO_COUNTERS.get(lang, ())):
                return None
        before = sentence[pos : m.start()].strip()
        if before:
            fragments.append(Fragment(before))
        fragments.append(Fragment(str(int(token)), is_number=True))
        pos = m.end()
    tail = sentence[pos:].strip()
    if tail:
        fragments.append(Fragment(tail))
    return tuple(fragments)


def number_prompts(lang: str, *, max_number: int = 100) -> list[tuple[str, str]]:
    """(text, lang) for every number `spoken_fragments` may ask for: render them ahead."""
    return [(str(n), lang) for n in range(max_number + 1)]
