"""The service hands freed heap pages back to the OS every 20 s (the soak's RSS creep
was free space inside glibc's heap, not memory in use)."""

from __future__ import annotations

import asyncio
import platform

import pytest

from hotline.memory import malloc_trim, memory_trim_ctx, trim_forever


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_malloc_trim_is_found_and_runs() -> None:
    trim = malloc_trim()
    assert trim is not None
    junk = [bytes(4096) for _ in range(20_000)]  # 80 MB of heap, then freed
    del junk
    assert trim() in (0, 1)


async def test_the_loop_trims_until_cancelled() -> None:
    calls: list[int] = []

    def trim() -> int:
        calls.append(1)
        return 1

    task = asyncio.create_task(trim_forever(trim, every_s=0.01))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(calls) >= 3


def test_the_app_runs_the_trimming_task() -> None:
    from pathlib import Path

    from config.loader import load_config
    from hotline.app import create_app
    from ivr.accounts import FileAccountBackend
    from tests.ivr.conftest import make_settings

    config_dir = Path(__file__).resolve().parents[2] / "config"
    app = create_app(
        make_settings("redis://127.0.0.1:1/0", "trim:"),
        load_config(config_dir),
        FileAccountBackend.load(config_dir / "accounts.yaml"),
    )
    assert memory_trim_ctx in list(app.cleanup_ctx)
