"""`hotline serve --workers 2` as a real subprocess against REDIS_URL: both workers answer on
one port, a killed worker is replaced, SIGTERM stops everything cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not alive for our purposes
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def children(pid: int) -> set[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    ).stdout
    found = set()
    for child in (int(x) for x in out.split()):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline and alive(child):
            found.add(child)
    return found


@pytest.fixture
def server(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "REDIS_URL": redis_url,
            "HOTLINE_KEY_PREFIX": key_prefix,
            "HOTLINE_CONFIG": str(ROOT / "config"),
            "HOTLINE_DATA": str(tmp_path / "var"),
            "PUBLIC_URL": f"http://127.0.0.1:{port}",
            "HOTLINE_JSON_LOGS": "true",
            "HOTLINE_SPEECH": "off",  # supervision is under test, not the speech models
        }
    )
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hotline",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            for pid in children(proc.pid):
                os.kill(pid, signal.SIGKILL)
            proc.kill()
            proc.wait(timeout=10)
        log.close()


async def pids_answering(port: int, want: int, within_s: float) -> set[int]:
    """Open fresh connections to /healthz until `want` distinct PIDs answered."""
    seen: set[int] = set()
    deadline = time.monotonic() + within_s
    url = f"http://127.0.0.1:{port}/healthz"
    # a new connection per request, so the kernel can pick another listener each time
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        while time.monotonic() < deadline and len(seen) < want:
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status == 200:
                        seen.add(int((await r.json())["pid"]))
            except (aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.1)
    return seen


@pytest.mark.timeout(90)
async def test_two_workers_restart_and_stop(
    server: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = server
    first = await pids_answering(port, 2, within_s=30)
    assert len(first) == 2, f"expected two workers answering, saw {first}"
    assert first == children(proc.pid)

    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    now: set[int] = set()
    while time.monotonic() < deadline:
        now = children(proc.pid)
        if len(now) == 2 and victim not in now:
            break
        await asyncio.sleep(0.1)
    assert len(now) == 2 and victim not in now, now
    replacement = (now - first).pop()
    answered = await pids_answering(port, 2, within_s=30)
    assert replacement in answered and victim not in answered

    workers = children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 30) == 0
    assert not any(alive(pid) for pid in workers)
