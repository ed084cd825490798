"""Prompts rendered at start-up (in the background) and by `hotline prompts build`, served
at /prompts; espeak-ng missing; recordings transcribed offline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

import hotline.app
import ivr.prompt_catalog
import speech.prompts
from config.loader import HotlineConfig
from hotline.app import create_app
from hotline.cli import main
from ivr import voice
from ivr.accounts import FileAccountBackend
from ivr.appkeys import FLOW_DEPS
from ivr.voice import SpeechSetup
from speech.recognizer import ModelRegistry
from tests.ivr.conftest import make_settings
from tests.voice.conftest import CONFIG_DIR, VoiceLine, fixture, speech_settings

ITEMS = [("잔액 조회는 1번", "ko"), ("Goodbye.", "en"), ("안녕히 계세요.", "ko")]
Client = Callable[[web.Application], Awaitable[TestClient]]  # type: ignore[type-arg]


def test_prompts_build_renders_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if not speech.prompts.espeak_available():
        pytest.skip("espeak-ng is not installed")
    monkeypatch.setenv("HOTLINE_PROMPT_DIR", str(tmp_path))
    monkeypatch.setattr(ivr.prompt_catalog, "prompt_items", lambda *_a, **_k: list(ITEMS))
    assert main(["prompts", "build"]) == 0
    first = capsys.readouterr().err
    assert "3/3" in first and "3 rendered, 0 already there, 0 failed" in first
    files = sorted(p.name for p in tmp_path.glob("*.wav"))
    assert len(files) == 3
    stamps = [p.stat().st_mtime_ns for p in sorted(tmp_path.glob("*.wav"))]
    assert main(["prompts", "build"]) == 0
    assert "0 rendered, 3 already there" in capsys.readouterr().err
    assert [p.stat().st_mtime_ns for p in sorted(tmp_path.glob("*.wav"))] == stamps


async def _start(
    aiohttp_client: Client,
    redis_url: str,
    key_prefix: str,
    demo: HotlineConfig,
    setup: SpeechSetup,
) -> TestClient:  # type: ignore[type-arg]
    settings = make_settings(redis_url, key_prefix)
    accounts = FileAccountBackend.load(CONFIG_DIR / "accounts.yaml")
    return await aiohttp_client(create_app(settings, demo, accounts, speech=setup))


async def test_missing_prompts_render_in_the_background_and_are_served(
    aiohttp_client: Client,
    redis_url: str,
    key_prefix: str,
    demo: HotlineConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if not speech.prompts.espeak_available():
        pytest.skip("espeak-ng is not installed")
    caplog.set_level(logging.INFO, logger="hotline.ivr")
    monkeypatch.setattr(hotline.app, "prompt_items", lambda *_a, **_k: list(ITEMS))
    setup = SpeechSetup(settings=speech_settings(tmp_path), registry=ModelRegistry({}))
    client = await _start(aiohttp_client, redis_url, key_prefix, demo, setup)
    renderer = client.app[FLOW_DEPS].renderer
    text, lang = ITEMS[0]
    assert renderer.prompt_url(text, lang) is None  # start-up did not wait for the render
    for _ in range(200):
        if renderer.prompt_url(text, lang):
            break
        await asyncio.sleep(0.05)
    url = renderer.prompt_url(text, lang)
    assert url and url.startswith("https://hotline.bank.test/prompts/") and url.endswith(".wav")
    assert any(r.getMessage() == "prompts ready" for r in caplog.records)
    path = url.removeprefix("https://hotline.bank.test")
    resp = await client.get(path)
    assert resp.status == 200 and resp.content_type == "audio/wav"
    assert "immutable" in resp.headers["Cache-Control"]
    body = await resp.read()
    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE"
    again = await client.get(path, headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304
    assert (await client.get("/prompts/../../etc/passwd")).status == 404


async def test_without_espeak_one_warning_and_say_everywhere(
    aiohttp_client: Client,
    redis_url: str,
    key_prefix: str,
    demo: HotlineConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(speech.prompts, "espeak_available", lambda: False)
    setup = SpeechSetup(settings=speech_settings(tmp_path), registry=ModelRegistry({}))
    client = await _start(aiohttp_client, redis_url, key_prefix, demo, setup)
    await asyncio.sleep(0.2)  # the background render has nothing it can do
    warnings = [r for r in caplog.records if "espeak-ng is not installed" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert client.app[FLOW_DEPS].renderer.prompt_url(*ITEMS[0]) is None
    assert await asyncio.to_thread(lambda: list(tmp_path.glob("*.wav"))) == []


@pytest.fixture
async def recordings(aiohttp_server: Any) -> str:
    wav = fixture("ko_lost-card_ko_160.wav").read_bytes()

    async def small(_r: web.Request) -> web.Response:
        return web.Response(body=wav, content_type="audio/x-wav")

    async def huge(_r: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(_r)
        for _ in range(10):
            await resp.write(b"\0" * 1024 * 1024)
        return resp

    async def not_wav(_r: web.Request) -> web.Response:
        return web.Response(body=b"<html>nope</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/Recordings/RE1", small)
    app.router.add_get("/Recordings/RE2", huge)
    app.router.add_get("/Recordings/RE3", not_wav)
    server = await aiohttp_server(app, host="127.0.0.1")
    return str(server.make_url("/Recordings")).rstrip("/")


async def test_transcribe_recording(voice_line: VoiceLine, recordings: str) -> None:
    text = await voice.transcribe_recording(f"{recordings}/RE1")
    assert isinstance(text, str) and text.strip()
    assert await voice.transcribe_recording(f"{recordings}/RE2") is None  # over the bound
    assert await voice.transcribe_recording(f"{recordings}/RE3") is None  # not a WAV
    assert await voice.transcribe_recording(f"{recordings}/RE404") is None
    assert await voice.transcribe_recording("https://elsewhere.test/RE1") is None  # not Twilio
    assert await voice.transcribe_recording(f"{recordings}/RE1", lang="en") is None  # no model
