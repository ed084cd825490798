from __future__ import annotations

from pathlib import Path

import pytest

from speech.prompts import VoiceSettings
from speech.settings import SpeechSettings, SpeechSettingsError


def test_defaults_scale_with_cores() -> None:
    s = SpeechSettings.from_env({}, cpu_count=4)
    assert (s.max_sessions, s.workers) == (40, 4)
    assert s.prompt_dir == Path("var/prompts")
    assert s.voices["ko"] == VoiceSettings("ko", 150)
    assert (s.accept, s.reject) == (0.5, 0.3)


def test_environment_overrides() -> None:
    s = SpeechSettings.from_env(
        {
            "HOTLINE_ASR_MAX_SESSIONS": "3",
            "HOTLINE_ASR_WORKERS": "2",
            "HOTLINE_ASR_NO_INPUT_MS": "4000",
            "HOTLINE_ASR_ACCEPT": "0.7",
            "HOTLINE_DATA": "/data",
            "HOTLINE_TTS_VOICE_KO": "ko+f2",
            "HOTLINE_TTS_RATE_KO": "130",
            "HOTLINE_TTS_RATE_EN_GB": "170",
        },
        cpu_count=8,
    )
    assert (s.max_sessions, s.workers, s.session.no_input_ms) == (3, 2, 4000)
    assert s.accept == 0.7
    assert s.prompt_dir == Path("/data/prompts")
    assert s.voices["ko"] == VoiceSettings("ko+f2", 130)
    assert s.voices["en-gb"] == VoiceSettings("en-gb", 170)


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"HOTLINE_ASR_MAX_SESSIONS": "0"}, "HOTLINE_ASR_MAX_SESSIONS"),
        ({"HOTLINE_ASR_WORKERS": "many"}, "HOTLINE_ASR_WORKERS"),
        ({"HOTLINE_ASR_ACCEPT": "1.5"}, "HOTLINE_ASR_ACCEPT"),
        ({"HOTLINE_ASR_ACCEPT": "0.2"}, "HOTLINE_ASR_REJECT"),
        ({"HOTLINE_TTS_RATE_KO": "5"}, "HOTLINE_TTS_RATE_KO"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(SpeechSettingsError, match=name):
        SpeechSettings.from_env(env)
