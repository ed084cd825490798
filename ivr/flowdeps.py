"""What the webhooks need to run the flow: the definitions and the renderer, built once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from config.menus import Flow
from ivr.signature import SignatureChecker
from ivr.twiml import Renderer


@dataclass(frozen=True)
class FlowDeps:
    flow: Flow
    renderer: Renderer
    signatures: SignatureChecker
    queue_open: Callable[[str, datetime], bool]
    emergency_number: str | None
    emergency_queue: str
