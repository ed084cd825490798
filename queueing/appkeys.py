"""Application keys for the queueing services (filled by the composition root).

Typical wiring in a `cleanup_ctx`:

    store = QueueStore(app[REDIS], app[KEYS], queues_config)
    router = Router(store, dispatcher)          # dispatcher: the IVR's Twilio adapter
    app[QUEUE_STORE], app[QUEUE_ROUTER], app[QUEUE_STATS] = store, router, router.stats
    await router.start()
    yield
    await router.stop()
"""

from __future__ import annotations

from aiohttp import web

from queueing.router import Router
from queueing.stats import QueueStats
from queueing.store import QueueStore

QUEUE_STORE = web.AppKey("queue_store", QueueStore)
QUEUE_ROUTER = web.AppKey("queue_router", Router)
QUEUE_STATS = web.AppKey("queue_stats", QueueStats)
