"""`hotline call --in-process --json`: the demo command a person runs, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_hotline_call_in_process_prints_the_steps_and_outcome(redis_url: str) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "HOTLINE_KEY_PREFIX": "hltest:cli:"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hotline",
            "call",
            "--in-process",
            "--json",
            "--speedup",
            "50",
            "--lang",
            "ko",
            "--press",
            "3",
            "--press",
            "9",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [s["input"] for s in data["steps"]][:3] == [["dtmf:3"], ["dtmf:3"], ["dtmf:9"]]
    heard = [h["text"] for s in data["steps"] for h in s["heard"]]
    assert heard[-1] == "전화해 주셔서 감사합니다. 안녕히 계세요."
    assert data["outcome"]["hangup_reason"] == "hangup-verb"
    assert data["errors"] == []
