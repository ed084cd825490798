"""A private Redis for the live simulations.

Latency is what a simulation measures: at speed-up K every real millisecond becomes K
emulated ones. The shared Redis on this machine serves other suites at thousands of
commands per second (measured: 2 ms mean, spikes of 50-300 ms), which is not the service's
latency. So these tests start their own redis-server (Debian's, as the cluster tests do)
on a free port, a real one with persistence off; without the binary they fall back to
REDIS_URL / the shared fixture.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
import redis

SERVER = shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def sim_redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if SERVER is None:
        yield str(request.getfixturevalue("redis_url"))
        return
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="hotline-sim-redis-")
    proc = subprocess.Popen(
        [
            SERVER,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client = redis.Redis.from_url(url)
                client.ping()
                client.close()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
