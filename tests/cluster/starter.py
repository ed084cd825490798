"""Start a local Redis Cluster from Debian's redis-server, for the tests.

`local_cluster()` runs `masters` `redis-server --cluster-enabled yes` processes on free
ports (each also needs port + 10000 free for the cluster bus) in a temporary directory,
joins them with `redis-cli --cluster create ... --cluster-replicas 0`, waits until every
node reports `cluster_state:ok`, and stops and removes them on exit.

Ports are drawn at random and checked by binding, so parallel runs on one machine (other
worktrees, CI jobs) do not collide; a node that still fails to start (a port taken in
between) makes the whole cluster start again on new ports.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

MASTERS = 3
PR_SET_PDEATHSIG = 1
ATTEMPTS = 3


class ClusterUnavailable(RuntimeError):
    """redis-server or redis-cli is not installed."""


@dataclass(frozen=True)
class LocalCluster:
    ports: list[int]

    @property
    def url(self) -> str:
        """The service's cluster URL form: every master as a startup node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)


def binaries() -> tuple[str, str]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if not server or not cli:
        raise ClusterUnavailable(
            "redis-server/redis-cli not installed (apt-get install redis-server)"
        )
    return server, cli


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_cluster_ports(n: int) -> list[int]:
    """n ports p with p and p + 10000 (the cluster bus) both free."""
    ports: list[int] = []
    rng = random.Random()
    while len(ports) < n:
        p = rng.randrange(20000, 45000)
        if p not in ports and _port_free(p) and _port_free(p + 10000):
            ports.append(p)
    return ports


def cli(port: int, *args: str) -> str:
    out = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return out.stdout


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise RuntimeError(f"redis cluster: {what} not reached in {timeout} s")


def _up_or_exited(port: int, proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is not None or cli(port, "PING").strip() == "PONG"


def _cluster_ok(port: int) -> bool:
    return "cluster_state:ok" in cli(port, "CLUSTER", "INFO")


def _die_with_parent() -> None:
    """In the node, before exec: SIGTERM when the test process dies, even by SIGKILL, so
    an interrupted run leaves no cluster behind (Linux; elsewhere a no-op)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _start(
    server: str, redis_cli: str, tmp: Path, masters: int, procs: list[subprocess.Popen[bytes]]
) -> LocalCluster:
    """Start the nodes (appended to `procs`, for the caller to stop) and join them."""
    ports = _free_cluster_ports(masters)
    for port in ports:
        node_dir = tmp / str(port)
        node_dir.mkdir()
        procs.append(
            subprocess.Popen(
                [
                    server,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                    "--dir",
                    str(node_dir),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--protected-mode",
                    "no",
                    "--logfile",
                    str(node_dir / "redis.log"),
                ],
                stdout=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
        )
    for port, proc in zip(ports, procs, strict=True):
        _wait(partial(_up_or_exited, port, proc), f"node {port} up")
        if proc.poll() is not None:
            raise OSError(f"redis-server on port {port} exited (port taken?)")
    created = subprocess.run(
        [redis_cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
         "--cluster-replicas", "0", "--cluster-yes"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if created.returncode != 0:
        raise RuntimeError(f"redis-cli --cluster create failed:\n{created.stdout}")
    for port in ports:
        _wait(partial(_cluster_ok, port), f"cluster_state:ok on {port}")
    return LocalCluster(ports=ports)


@contextmanager
def local_cluster(masters: int = MASTERS) -> Iterator[LocalCluster]:
    """A running `masters`-node cluster; raises ClusterUnavailable without the binaries."""
    server, redis_cli = binaries()
    tmp = Path(tempfile.mkdtemp(prefix="hotline-cluster-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for attempt in range(ATTEMPTS):
            attempt_dir = tmp / str(attempt)
            attempt_dir.mkdir()
            try:
                cluster = _start(server, redis_cli, attempt_dir, masters, procs)
                break
            except OSError:
                _stop(procs)
                procs.clear()
                if attempt == ATTEMPTS - 1:
                    raise
        yield cluster
    finally:
        _stop(procs)
        shutil.rmtree(tmp, ignore_errors=True)
