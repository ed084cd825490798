"""Structured JSON-line logging, with phone numbers and long digit runs masked."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from itertools import islice
from typing import Any

_DIGIT_RUN = re.compile(r"\+?\d[\d\s\-]{5,}\d")
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# LogRecord.__init__ sets the standard attributes first, always in the same order; `extra`
# fields come after them (makeRecord refuses to overwrite one), so only the tail of a
# record's __dict__ can hold fields to write
_STANDARD = len(vars(logging.LogRecord("n", logging.INFO, "p", 1, "m", (), None)))
# json.dumps with options builds a new encoder per call; one encoder, the same output
_ENCODE = json.JSONEncoder(ensure_ascii=False, default=str).encode


def mask_phone(number: str | None) -> str:
    """Keep the last four digits only: '+8613812345678' -> '***5678'."""
    if not number:
        return ""
    digits = re.sub(r"\D", "", number)
    if len(digits) <= 4:
        return "***"
    return "***" + digits[-4:]


def scrub(text: str) -> str:
    """Mask any run of 7+ digits (phone, card or account numbers) left in free text."""
    if len(text) < 7:  # shorter than any match
        return text
    return _DIGIT_RUN.sub(lambda m: mask_phone(m.group(0)), text)


class JsonFormatter(logging.Formatter):
    _second = -1
    _stamp = ""

    def _timestamp(self, created: float, msecs: float) -> str:
        second = int(created)
        if second != self._second:  # strftime once a second, not once a line
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int(msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._timestamp(record.created, record.msecs),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": scrub(record.getMessage() if record.args else str(record.msg)),
        }
        for key, value in islice(record.__dict__.items(), _STANDARD, None):
            if key not in _RESERVED and key[0] != "_":
                entry[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["error"] = scrub(self.formatException(record.exc_info))
        return _ENCODE(entry)


def setup_logging(level: int = logging.INFO, *, json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    # None of these record fields is written (JsonFormatter leaves the standard ones out,
    # the text format names none): skip finding the caller's frame, thread and process
    # (logging HOWTO, "Optimization"; ~5 us of every line on the webhook path)
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
