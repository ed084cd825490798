"""`redis+sentinel://` URLs: the service finds the primary through Redis Sentinel.

A primary and one sentinel (Debian's redis-server in sentinel mode) on free ports; the
connection opened from the URL stores and advances an IVR session on the primary."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.keys import Keys
from config.loader import load_config
from config.redis_conn import open_redis
from ivr import engine
from ivr.sessions import SessionStore
from tests.ivr.conftest import CONFIG_DIR


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(port: int, *args: str) -> str:
    return subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True, text=True, timeout=10, check=False,
    ).stdout  # fmt: skip


@pytest.fixture(scope="module")
def sentinel_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = shutil.which("redis-server")
    if not server or not shutil.which("redis-cli"):
        pytest.skip("redis-server/redis-cli not installed (apt-get install redis-server)")
    tmp: Path = tmp_path_factory.mktemp("sentinel")
    primary, sentinel = _free_port(), _free_port()
    conf = tmp / "sentinel.conf"
    conf.write_text(
        f"port {sentinel}\nbind 127.0.0.1\ndir {tmp}\n"
        f"sentinel monitor hotline 127.0.0.1 {primary} 1\n"
        "sentinel down-after-milliseconds hotline 5000\n"
    )
    procs = [
        subprocess.Popen(
            [
                server,
                "--port",
                str(primary),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
                str(tmp),
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        ),  # fmt: skip
        subprocess.Popen([server, str(conf), "--sentinel"], stdout=subprocess.DEVNULL),
    ]
    try:
        deadline = time.monotonic() + 20
        while str(primary) not in _cli(sentinel, "SENTINEL", "get-master-addr-by-name", "hotline"):
            if time.monotonic() > deadline:
                raise RuntimeError("sentinel did not report the primary")
            time.sleep(0.1)
        yield f"redis+sentinel://127.0.0.1:{sentinel}/hotline/0"
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


async def test_sessions_through_a_sentinel_url(sentinel_url: str, tmp_path: Path) -> None:
    client, close = await open_redis(sentinel_url, tmp_path)
    try:
        assert await client.ping()
        keys = Keys(prefix=f"hlsn:{uuid.uuid4().hex[:8]}:")
        flow = load_config(CONFIG_DIR).flow
        store = SessionStore(client, keys, 60)
        session = engine.new_session(flow, "CA" + uuid.uuid4().hex, "+8613812345678")
        assert (await store.advance(-1, session, "<Response/>"))[0]
        stored = await store.load(session.call_sid)
        assert stored is not None and stored.seq == session.seq
        role = await client.execute_command("ROLE")  # type: ignore[no-untyped-call]
        assert role[0] == "master"
    finally:
        await close()
