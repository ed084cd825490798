"""The application keys shared by every package's handlers.

The composition root (`hotline.app`) fills these in `cleanup_ctx`; handlers in any
package read them from `request.app`, so no handler imports the entry point. Each
package keeps the keys for its own services in its own `appkeys` module.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from aiohttp import web

from config.keys import Keys
from config.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", aioredis.Redis)
KEYS = web.AppKey("keys", Keys)
