"""The benchmarks' baseline: a bare aiohttp handler that returns fixed TwiML and does nothing
else, served exactly like the service (same supervisor, reuse_port, no access log).

    .venv/bin/python bench/bare_server.py --port 8090 [--workers N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hotline.workers import Supervisor, WorkerSpec  # noqa: E402

FIXED_TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="/ivr/language?s=0" '
    'input="dtmf" method="POST" timeout="5"><Say language="en-US">For English, press 2.</Say>'
    "</Gather></Response>"
)


async def bare(_request: web.Request) -> web.Response:
    return web.Response(text=FIXED_TWIML, content_type="application/xml", charset="utf-8")


def bare_main(spec: WorkerSpec) -> None:
    app = web.Application()
    app.router.add_post("/voice", bare)
    app.router.add_post("/ivr/{node}", bare)
    web.run_app(app, host=spec.host, port=spec.port, reuse_port=True, print=None, access_log=None)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    return Supervisor(
        workers=args.workers, host=args.host, port=args.port, redis_url=None, target=bare_main
    ).run()


if __name__ == "__main__":
    raise SystemExit(main())
