"""A redis-server of the test's own (never the shared one on 6379), to kill and restart."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

REDIS_SERVER = "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisProc:
    """redis-server on `port` with AOF in `dir`; `kill()` is SIGKILL, `start()` restarts it
    on the same port and directory (so it replays the same append-only file)."""

    dir: Path
    fsync: str = "everysec"  # appendfsync: always | everysec | no
    appendonly: bool = True
    port: int = field(default_factory=free_port)
    args: tuple[str, ...] = ()  # more redis-server options, e.g. ("--requirepass", "s3cret")
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.dir),
                "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", self.fsync,
                "--save", "",
                "--daemonize", "no",
                "--logfile", str(self.dir / "redis.log"),
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
                try:
                    # loading the AOF answers LOADING until done; wait for a real PONG
                    if client.ping():
                        return
                except redis.AuthenticationError:
                    return  # --requirepass: it answers, so it is up
                finally:
                    client.close()
            except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on {self.port} did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final fsync."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None

    def stop(self) -> None:
        self.kill()
