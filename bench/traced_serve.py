"""`hotline serve` with memory tracing, for the soak.

    TRACEMALLOC_DIR=var/tm TRACEMALLOC_EVERY_S=60 .venv/bin/python bench/traced_serve.py serve

Snapshots go to `$TRACEMALLOC_DIR/snap-<seconds since start>.tm` (compare two with
`bench/tracemalloc_diff.py`). With `TRACEMALLOC_FRAMES=0` tracemalloc stays off and only
`memstats.jsonl` is written: RSS, Python's allocated blocks, objects tracked by the GC,
glibc malloc's arena figures (mallinfo2) and threads, to tell growth of Python objects
from growth outside them. Kept out of the service: tracing costs CPU and memory.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hotline.cli import main  # noqa: E402


class MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
            "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def memstats(seconds: int) -> dict[str, int]:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    info = libc.mallinfo2()
    with open("/proc/self/statm", encoding="ascii") as statm:
        rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return {
        "t": seconds,
        "rss": rss,
        "py_blocks": sys.getallocatedblocks(),
        "gc_objects": len(gc.get_objects()),
        "malloc_arena": info.arena,
        "malloc_used": info.uordblks,
        "malloc_free": info.fordblks,
        "malloc_mmap": info.hblkhd,
        "threads": threading.active_count(),
    }


def dump_every(folder: Path, every_s: float, stop: threading.Event) -> None:
    started = time.monotonic()
    trim = os.environ.get("MALLOC_TRIM") == "1"  # experiment: free pages back to the OS
    while not stop.wait(every_s):
        seconds = int(time.monotonic() - started)
        if trim:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        with (folder / "memstats.jsonl").open("a", encoding="utf-8") as out:
            out.write(json.dumps(memstats(seconds)) + "\n")
        if tracemalloc.is_tracing():
            tracemalloc.take_snapshot().dump(str(folder / f"snap-{seconds:05d}.tm"))


if __name__ == "__main__":
    folder = Path(os.environ["TRACEMALLOC_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    frames = int(os.environ.get("TRACEMALLOC_FRAMES", "8"))
    if frames > 0:
        tracemalloc.start(frames)
    stop = threading.Event()
    every = float(os.environ.get("TRACEMALLOC_EVERY_S", "60"))
    threading.Thread(target=dump_every, args=(folder, every, stop), daemon=True).start()
    try:
        code = main(sys.argv[1:])
    finally:
        stop.set()
    raise SystemExit(code)
