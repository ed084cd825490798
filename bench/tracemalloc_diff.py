"""Top allocation growth between two tracemalloc snapshots (from bench/traced_serve.py).

.venv/bin/python bench/tracemalloc_diff.py OLD.tm NEW.tm [--by traceback] [--top 25]
"""

from __future__ import annotations

import argparse
import tracemalloc
from typing import Literal


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--by", choices=("lineno", "filename", "traceback"), default="lineno")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    by: Literal["lineno", "filename", "traceback"] = args.by
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    old = tracemalloc.Snapshot.load(args.old).filter_traces(ignore)
    new = tracemalloc.Snapshot.load(args.new).filter_traces(ignore)
    total_old = sum(s.size for s in old.statistics("filename"))
    total_new = sum(s.size for s in new.statistics("filename"))
    print(f"traced: {total_old / 2**20:.2f} MB -> {total_new / 2**20:.2f} MB")
    for stat in new.compare_to(old, by)[: args.top]:
        print(
            f"{stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  "
            f"(now {stat.size / 1024:.1f} KiB)"
        )
        for line in stat.traceback.format()[-(8 if by == "traceback" else 1) * 2 :]:
            print("    " + line.strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
