"""A test caller that walks the service's TwiML the way Twilio would, with signed requests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from aiohttp.test_utils import TestClient

from ivr.appkeys import ROUTER
from tests.twilio_signing import PUBLIC_URL, call_params, signed_post


@dataclass
class Walker:
    client: TestClient  # type: ignore[type-arg]
    sid: str
    from_number: str = "+8613812345678"
    last: ET.Element | None = None
    last_body: str = ""
    heard: list[str] = field(default_factory=list)

    async def _post(self, path_qs: str, **extra: str) -> ET.Element:
        response = await signed_post(
            self.client, path_qs, call_params(self.sid, From=self.from_number, **extra)
        )
        assert response.status == 200, await response.text()
        assert response.content_type == "application/xml"
        self.last_body = await response.text()
        self.last = ET.fromstring(self.last_body)
        assert self.last.tag == "Response"
        self.heard.extend(s.text or "" for s in self.last.iter("Say"))
        return self.last

    async def start(self) -> ET.Element:
        return await self._post("/voice")

    def action(self, tag: str = "Gather") -> str:
        assert self.last is not None
        element = self.last.find(f".//{tag}")
        assert element is not None, f"no <{tag}> in {self.last_body}"
        url = element.get("action", "")
        assert url.startswith(PUBLIC_URL), url
        return url[len(PUBLIC_URL) :]

    async def press(self, digits: str) -> ET.Element:
        return await self._post(self.action(), Digits=digits)

    async def no_input(self) -> ET.Element:
        return await self._post(self.action())

    async def record(self, url: str, duration: int) -> ET.Element:
        return await self._post(
            self.action("Record"), RecordingUrl=url, RecordingDuration=str(duration)
        )

    def says(self) -> list[str]:
        assert self.last is not None
        return [s.text or "" for s in self.last.iter("Say")]

    def tags(self) -> list[str]:
        assert self.last is not None
        return [child.tag for child in self.last]

    def gather_node(self) -> str:
        path = self.action()
        return path.split("?")[0].removeprefix("/ivr/")

    async def enqueued(self) -> str | None:
        """The queue the call is waiting in, once the answer hands it to the hold loop."""
        assert self.last is not None
        holding = self.last.find("Enqueue")
        if holding is None or "/queue/hold" not in holding.get("waitUrl", ""):
            return None
        router = self.client.server.app[ROUTER]  # type: ignore[union-attr]
        status = await router.store.call_status(self.sid)
        return status.queue if status else None
