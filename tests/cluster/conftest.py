"""A local 3-master Redis Cluster for the tests, started from Debian's redis-server.

Session-scoped: three `redis-server --cluster-enabled yes` processes on free ports (each
also needs port + 10000 free for the cluster bus) in a temporary directory, joined with
`redis-cli --cluster create ... --cluster-replicas 0`, ready once every node reports
`cluster_state:ok`; stopped and removed at the end. Skipped when redis-server or redis-cli
is missing (CI: `apt-get install redis-server`, which brings redis-tools).
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster

from config.redis_conn import cluster_client

MASTERS = 3


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


def _cli(port: int, *args: str) -> str:
    out = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return out.stdout


def _wait(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise RuntimeError(f"redis cluster: {what} not reached in {timeout} s")


@pytest.fixture(scope="session")
def cluster_ports() -> Iterator[list[int]]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if not server or not cli:
        pytest.skip("redis-server/redis-cli not installed (apt-get install redis-server)")
    tmp = Path(tempfile.mkdtemp(prefix="hotline-cluster-"))
    ports = _free_cluster_ports(MASTERS)
    procs: list[subprocess.Popen[bytes]] = []
    try:
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
                )  # fmt: skip
            )
        for port in ports:
            _wait(lambda p=port: _cli(p, "PING").strip() == "PONG", f"node {port} up")
        created = subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{created.stdout}")
        for port in ports:
            _wait(
                lambda p=port: "cluster_state:ok" in _cli(p, "CLUSTER", "INFO"),
                f"cluster_state:ok on {port}",
            )
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster_url(cluster_ports: list[int]) -> str:
    """The service's cluster URL form: every master as a startup node."""
    return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in cluster_ports)


@pytest.fixture
def cluster_prefix() -> str:
    return f"hlcl:{uuid.uuid4().hex[:10]}:"


@pytest.fixture
async def cluster(cluster_url: str, cluster_prefix: str) -> AsyncIterator[RedisCluster]:
    """A cluster client (decode_responses) for one test; its prefix is removed afterwards."""
    client = cluster_client(cluster_url)
    try:
        yield client
    finally:
        async for key in client.scan_iter(match=f"{cluster_prefix}*", count=500):
            await client.unlink(key)
        await client.aclose()
