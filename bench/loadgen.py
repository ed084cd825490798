"""A constant-rate HTTP/1.1 load generator (wrk2's model), for latency at a fixed rate.

Request i is *scheduled* at t0 + i / rate. Each of `connections` keep-alive connections
takes the next scheduled slot, waits until its time, sends, and reads the answer; latency is
measured from the scheduled time, not from the send, so a stalled server cannot hide its
queueing delay by slowing the generator down (coordinated omission). Requests are
pre-built bytes; responses are parsed just enough (status line, Content-Length) to keep
the client's own cost small next to the server's.

`constant_rate` is the asyncio generator; on 2 cores it cannot keep a schedule of a few
thousand requests per second (late starts, tens of ms of its own delay). `constant_rate_c`
runs the same model in bench/rategen.c (epoll, one thread, compiled once into var/bench/),
with the same signature and result, and falls back to `constant_rate` without gcc.
"""

from __future__ import annotations

import array
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RATEGEN_SOURCE = ROOT / "bench" / "rategen.c"
RATEGEN_BINARY = ROOT / "var" / "bench" / "rategen"


@dataclass
class RateResult:
    rate: float
    duration_s: float
    sent: int = 0
    latencies_s: list[float] = field(default_factory=list)
    bad_status: int = 0
    bad_body: int = 0
    errors: int = 0
    late_starts: int = 0  # requests that could not even be sent on time (no free connection)

    def percentile(self, q: float) -> float:
        if not self.latencies_s:
            return float("nan")
        data = sorted(self.latencies_s)
        k = min(len(data) - 1, max(0, round(q / 100 * (len(data) - 1))))
        return data[k]

    @property
    def achieved_rps(self) -> float:
        return len(self.latencies_s) / self.duration_s if self.duration_s else 0.0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    body = await reader.readexactly(length) if length else b""
    return status, body


async def constant_rate(
    host: str,
    port: int,
    requests: list[bytes],
    *,
    rate: float,
    duration_s: float,
    connections: int = 64,
    expect: bytes = b"<Response>",
) -> RateResult:
    """Send requests[i] at t0 + i/rate for `duration_s` seconds (each request at most once)."""
    total = min(len(requests), int(rate * duration_s))
    if total < int(rate * duration_s):
        raise ValueError(f"need {int(rate * duration_s)} requests, the pool holds {len(requests)}")
    result = RateResult(rate=rate, duration_s=total / rate)
    next_index = 0
    # every connection is open before the clock starts: connecting is not the server's latency
    conns = [await asyncio.open_connection(host, port) for _ in range(connections)]
    t0 = time.perf_counter() + 0.1

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal next_index
        try:
            while True:
                i = next_index
                if i >= total:
                    return
                next_index += 1
                scheduled = t0 + i / rate
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -0.001:
                    result.late_starts += 1
                try:
                    writer.write(requests[i])
                    status, body = await _read_response(reader)
                except (OSError, asyncio.IncompleteReadError):
                    result.errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                result.latencies_s.append(time.perf_counter() - scheduled)
                result.sent += 1
                if status != 200:
                    result.bad_status += 1
                elif expect not in body:
                    result.bad_body += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection(r, w) for r, w in conns))
    return result


def build_rategen() -> Path | None:
    """var/bench/rategen, compiled from bench/rategen.c when missing or older than the
    source; None when gcc is missing."""
    binary = RATEGEN_BINARY
    if binary.exists() and binary.stat().st_mtime >= RATEGEN_SOURCE.stat().st_mtime:
        return binary
    gcc = shutil.which("gcc")
    if gcc is None:
        return None
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(f"{binary.name}.{os.getpid()}.tmp")
    subprocess.run([gcc, "-O2", "-o", str(partial), str(RATEGEN_SOURCE)], check=True)
    partial.replace(binary)  # atomic: a concurrent build never runs a half-written file
    return binary


async def constant_rate_c(
    host: str,
    port: int,
    requests: list[bytes],
    *,
    rate: float,
    duration_s: float,
    connections: int = 64,
    expect: bytes = b"<Response>",
) -> RateResult:
    """`constant_rate` in C (bench/rategen.c), run in a subprocess so the caller's loop
    keeps running; the Python generator, with a warning, when gcc is missing."""
    total = min(len(requests), int(rate * duration_s))
    if total < int(rate * duration_s):
        raise ValueError(f"need {int(rate * duration_s)} requests, the pool holds {len(requests)}")
    binary = build_rategen()
    if binary is None:
        print("warning: gcc is missing, using the Python load generator", file=sys.stderr)
        return await constant_rate(
            host, port, requests, rate=rate, duration_s=duration_s,
            connections=connections, expect=expect,
        )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="rategen-") as tmp:
        pool = Path(tmp) / "requests"
        latencies = Path(tmp) / "latencies"
        with pool.open("wb") as f:
            for raw in requests[:total]:
                f.write(b"%d\n" % len(raw))
                f.write(raw)
        proc = await asyncio.create_subprocess_exec(
            str(binary), host, str(port), repr(float(rate)), repr(float(duration_s)),
            str(connections), str(pool), expect.hex(), str(latencies),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"rategen failed with exit code {proc.returncode}")
        summary = json.loads(out)
        lat = array.array("d")
        lat.frombytes(latencies.read_bytes())
    return RateResult(
        rate=rate,
        duration_s=total / rate,
        sent=summary["sent"],
        latencies_s=lat.tolist(),
        bad_status=summary["bad_status"],
        bad_body=summary["bad_body"],
        errors=summary["errors"],
        late_starts=summary["late_starts"],
    )
