"""A constant-rate HTTP/1.1 load generator (wrk2's model), for latency at a fixed rate.

Request i is *scheduled* at t0 + i / rate. Each of `connections` keep-alive connections
takes the next scheduled slot, waits until its time, sends, and reads the answer; latency is
measured from the scheduled time, not from the send, so a stalled server cannot hide its
queueing delay by slowing the generator down (coordinated omission). Requests are
pre-built bytes; responses are parsed just enough (status line, Content-Length) to keep
the client's own cost small next to the server's.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


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
