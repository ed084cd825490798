from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from speech import mulaw
from speech.prompts import (
    CACHE_CONTROL,
    Fragment,
    PromptCache,
    VoiceSettings,
    add_prompt_routes,
    espeak_available,
    number_prompts,
    prompt_key,
    spoken_fragments,
)

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
needs_espeak = pytest.mark.skipif(not espeak_available(), reason="espeak-ng not installed")


def test_key_depends_on_text_language_voice_and_rate() -> None:
    ko = VoiceSettings("ko", 150)
    base = prompt_key("안녕하세요", "ko", ko)
    assert len(base) == 32 and int(base, 16) >= 0
    assert prompt_key("안녕하세요", "ko", ko) == base
    assert prompt_key(" 안녕하세요 ", "ko", ko) == base  # whitespace is not a change
    assert prompt_key("안녕하세요!", "ko", ko) != base
    assert prompt_key("안녕하세요", "en", ko) != base
    assert prompt_key("안녕하세요", "ko", VoiceSettings("ko+f2", 150)) != base
    assert prompt_key("안녕하세요", "ko", VoiceSettings("ko", 170)) != base


def test_voice_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        VoiceSettings("")
    with pytest.raises(ValueError):
        VoiceSettings("ko", 5)


def test_paths_and_urls(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path, {"ko": VoiceSettings("ko", 140)}, available=True)
    path = cache.path_for("잔액", "ko")
    assert path.parent == tmp_path and path.suffix == ".wav"
    assert cache.url_for("잔액", "ko") == f"/prompts/{path.name}"
    assert not cache.exists("잔액", "ko")
    assert cache.load_ulaw("잔액", "ko") is None


async def test_missing_espeak_is_a_warning_and_everything_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="hotline.speech"):
        cache = PromptCache(tmp_path, available=False)
    assert not cache.available
    assert any("espeak-ng" in r.getMessage() for r in caplog.records)
    report = await cache.render_missing([("안녕하세요", "ko")])
    assert report.skipped and not report.rendered and not cache.exists("안녕하세요", "ko")


@needs_espeak
async def test_render_missing_renders_once_as_8khz_mulaw(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path, {"ko": VoiceSettings("ko", 160)})
    items = [("상담원을 연결합니다", "ko"), ("3", "ko"), ("3", "ko"), ("", "ko")]
    seen: list[tuple[int, int]] = []
    report = await cache.render_missing(items, progress=lambda d, t: seen.append((d, t)))
    assert len(report.rendered) == 2 and not report.failed
    assert seen[0] == (0, 2) and seen[-1] == (2, 2)
    blob = cache.path_for("상담원을 연결합니다", "ko").read_bytes()
    assert blob[:4] == b"RIFF" and blob[20:22] == b"\x07\x00"  # WAVE_FORMAT_MULAW
    audio = mulaw.parse_wav(blob)
    assert audio.rate == 8000 and 0.5 < audio.seconds < 5
    ulaw = cache.load_ulaw("상담원을 연결합니다", "ko")
    assert ulaw is not None and len(ulaw) == len(audio.pcm) // 2
    again = await cache.render_missing(items)
    assert not again.rendered and len(again.cached) == 2


async def test_handler_serves_immutable_files_with_etag(
    tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    key = "0123456789abcdef0123456789abcdef"
    body = mulaw.ulaw_wav_bytes(b"\xff" * 800)
    (tmp_path / f"{key}.wav").write_bytes(body)
    (tmp_path / "secret.txt").write_text("no")
    app = web.Application()
    add_prompt_routes(app, tmp_path)
    client = await aiohttp_client(app)

    resp = await client.get(f"/prompts/{key}.wav")
    assert resp.status == 200
    assert await resp.read() == body
    assert resp.headers["Cache-Control"] == CACHE_CONTROL
    assert resp.headers["Content-Type"] == "audio/wav"
    etag = resp.headers["ETag"]
    assert etag == f'"{key}"'

    resp = await client.get(f"/prompts/{key}.wav", headers={"If-None-Match": etag})
    assert resp.status == 304 and await resp.read() == b""
    resp = await client.get(
        f"/prompts/{key}.wav", headers={"If-None-Match": f'"other", {etag}'}
    )
    assert resp.status == 304
    resp = await client.get(f"/prompts/{key}.wav", headers={"If-None-Match": '"other"'})
    assert resp.status == 200


@pytest.mark.parametrize(
    "name",
    [
        "ffffffffffffffffffffffffffffffff.wav",  # well-formed but unknown
        "secret.txt",
        "..%2Fsecret.txt",
        "%2E%2E%2Fsecret.txt",
        "0123456789ABCDEF0123456789ABCDEF.wav",
        "0123456789abcdef0123456789abcdef.wav.bak",
        "0123456789abcdef0123456789abcdef",
        ".wav",
    ],
)
async def test_handler_404s_unknown_names_and_path_tricks(
    tmp_path: Path, aiohttp_client: ClientFactory, name: str
) -> None:
    (tmp_path / "secret.txt").write_text("no")
    app = web.Application()
    add_prompt_routes(app, tmp_path)
    client = await aiohttp_client(app)
    resp = await client.get(f"/prompts/{name}")
    assert resp.status == 404
    assert await resp.text() != "no"


async def test_handler_rejects_traversal_outside_route(
    tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    app = web.Application()
    add_prompt_routes(app, tmp_path)
    client = await aiohttp_client(app)
    resp = await client.get("/prompts/../../etc/passwd")
    assert resp.status == 404


@pytest.mark.parametrize(
    ("sentence", "lang", "expected"),
    [
        ("잠시만 기다려 주십시오.", "ko", (Fragment("잠시만 기다려 주십시오."),)),
        (
            "대기 순서는 3번이며 예상 대기 시간은 5분입니다.",
            "ko",
            (
                Fragment("대기 순서는"),
                Fragment("3", True),
                Fragment("번이며 예상 대기 시간은"),
                Fragment("5", True),
                Fragment("분입니다."),
            ),
        ),
        ("대기 인원 12 명", "ko", (Fragment("대기 인원"), Fragment("12", True), Fragment("명"))),
        ("고객님은 3번째 순서입니다.", "ko", None),  # native counter: reading changes
        ("잔액은 1,234,500원입니다.", "ko", None),  # an amount: <Say>
        ("잔액은 25000원입니다.", "ko", None),  # above max_number
        ("You are number 3 in the queue.", "en", (
            Fragment("You are number"), Fragment("3", True), Fragment("in the queue."),
        )),
        ("About 5minutes", "en", None),
        ("Rate 2.5 percent", "en", None),
        ("007", "en", (Fragment("7", True),)),
    ],
)  # fmt: skip
def test_spoken_fragments(sentence: str, lang: str, expected: tuple[Fragment, ...] | None) -> None:
    assert spoken_fragments(sentence, lang) == expected


def test_number_prompts_cover_what_fragments_need() -> None:
    texts = {t for t, _ in number_prompts("ko", max_number=100)}
    assert {"0", "7", "100"} <= texts and len(texts) == 101


def test_progress_bar() -> None:
    import io

    from speech.prompts import progress_bar

    out = io.StringIO()
    draw = progress_bar(out, width=10)
    draw(0, 4)
    draw(2, 4)
    draw(4, 4)
    assert out.getvalue() == "\r[..........] 0/4\r[#####.....] 2/4\r[##########] 4/4\n"
    empty = io.StringIO()
    progress_bar(empty, width=4)(0, 0)
    assert empty.getvalue() == "\r[####] 0/0\n"
