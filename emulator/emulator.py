"""The carrier emulator: the registry of calls, queues, phones and recordings."""

from __future__ import annotations

import asyncio
import uuid
from types import TracebackType

import aiohttp
from aiohttp import web

from emulator.calls import Call, CallSetup
from emulator.clock import Clock
from emulator.errors import DebuggerEntry
from emulator.parties import AgentPhone, CallerScript, CustomerPhone
from emulator.queues import CallQueue
from emulator.state import Callback
from emulator.twiml import DialClient, DialNumber
from emulator.webhooks import WEBHOOK_TIMEOUT_S, Webhooks


class CarrierEmulator:
    """Twilio's stand-in, in-process.

    speedup: every emulated wait lasts seconds / speedup in real time.
    webhook_timeout: real seconds before a webhook counts as failed (Twilio: 15 s).
    public_url: where `rest_app()` is served (the base of RecordingUrl values).
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        speedup: float = 1.0,
        webhook_timeout: float = WEBHOOK_TIMEOUT_S,
        public_url: str | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.clock = Clock(speedup)
        self.webhook_timeout = webhook_timeout
        self.public_url = public_url
        self.calls: dict[str, Call] = {}
        self.errors: list[DebuggerEntry] = []
        self.internal_errors: list[str] = []
        self.callback_log: list[tuple[Callback, int | None]] = []
        self.recordings: dict[str, bytes] = {}
        self.media_cache: dict[str, float] = {}
        self.queues: dict[str, CallQueue] = {}
        self.agents_by_number: dict[str, AgentPhone] = {}
        self.agents_by_client: dict[str, AgentPhone] = {}
        self.customers: dict[str, CustomerPhone] = {}
        self.default_customer = CustomerPhone()
        self.default_agent: AgentPhone | None = None
        self._session: aiohttp.ClientSession | None = None
        self._webhooks: Webhooks | None = None

    # ------------------------------------------------------------ lifecycle

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._webhooks = None
        return self._session

    @property
    def webhooks(self) -> Webhooks:
        if self._webhooks is None or self._session is None or self._session.closed:
            self._webhooks = Webhooks(self.session, self.auth_token, self.webhook_timeout)
        return self._webhooks

    async def close(self) -> None:
        """Hang up what is still running, wait for it, close the HTTP session."""
        for call in list(self.calls.values()):
            call.hangup("emulator-closed")
        tasks = [c.task for c in self.calls.values() if c.task is not None and not c.task.done()]
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=10)
            for task in stuck:  # e.g. blocked on a webhook that never answers
                task.cancel()
            if stuck:
                await asyncio.wait(stuck)
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> CarrierEmulator:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------ registries

    def new_sid(self, prefix: str) -> str:
        return prefix + uuid.uuid4().hex

    def queue(self, name: str) -> CallQueue:
        if name not in self.queues:
            self.queues[name] = CallQueue(name=name, sid=self.new_sid("QU"))
        return self.queues[name]

    def register_agent(self, phone: AgentPhone) -> AgentPhone:
        """Make an agent phone reachable by its number and/or client name."""
        if phone.number:
            self.agents_by_number[phone.number] = phone
        if phone.client:
            self.agents_by_client[phone.client] = phone
        return phone

    def register_customer(self, number: str, phone: CustomerPhone) -> CustomerPhone:
        """How the person at `number` behaves when an outbound call reaches them."""
        self.customers[number] = phone
        return phone

    def find_phone(self, target: DialNumber | DialClient) -> AgentPhone | None:
        """The phone a <Dial> reaches; with `default_agent` set, an unknown number or
        client gets a phone of its own modelled on it (a demo's "any agent answers")."""
        if isinstance(target, DialClient):
            phone = self.agents_by_client.get(target.identity)
        else:
            phone = self.agents_by_number.get(target.number)
        if phone is None and self.default_agent is not None:
            template = self.default_agent
            phone = self.register_agent(
                AgentPhone(
                    number=target.number if isinstance(target, DialNumber) else None,
                    client=target.identity if isinstance(target, DialClient) else None,
                    answer_after=template.answer_after,
                    busy=template.busy,
                    handle_time=template.handle_time,
                    max_calls=template.max_calls,
                )
            )
        return phone

    def recording_url(self, recording_sid: str) -> str:
        base = (self.public_url or "http://emulator.invalid").rstrip("/")
        return f"{base}/2010-04-01/Accounts/{self.account_sid}/Recordings/{recording_sid}"

    # ------------------------------------------------------------ calls

    async def place_inbound_call(
        self,
        *,
        voice_url: str,
        from_: str,
        to: str,
        script: CallerScript | None = None,
        method: str = "POST",
        fallback_url: str | None = None,
        fallback_method: str = "POST",
        status_callback: str | None = None,
        status_callback_method: str = "POST",
        status_callback_events: tuple[str, ...] = ("completed",),
    ) -> Call:
        """A caller dials the service's number: Twilio requests `voice_url`."""
        setup = CallSetup(
            from_=from_,
            to=to,
            direction="inbound",
            url=voice_url,
            method=method.upper(),
            fallback_url=fallback_url,
            fallback_method=fallback_method.upper(),
            status_callback=status_callback,
            status_callback_method=status_callback_method.upper(),
            status_callback_events=status_callback_events,
            script=script or CallerScript(),
        )
        return self._start(setup)

    async def create_call(
        self,
        *,
        to: str,
        from_: str,
        url: str | None = None,
        twiml: str | None = None,
        method: str = "POST",
        fallback_url: str | None = None,
        fallback_method: str = "POST",
        status_callback: str | None = None,
        status_callback_method: str = "POST",
        status_callback_events: tuple[str, ...] = ("completed",),
        machine_detection: str | None = None,
        timeout: float = 60.0,  # noqa: ASYNC109  (Twilio's ring Timeout, not an asyncio one)
    ) -> Call:
        """An outbound-api call (what POST Calls.json does)."""
        far = self._far_end(to)
        script = (
            CallerScript(talk_time=far.handle_time)
            if isinstance(far, AgentPhone)
            else far.script
        )
        setup = CallSetup(
            from_=from_,
            to=to,
            direction="outbound-api",
            url=url,
            method=method.upper(),
            twiml=twiml,
            fallback_url=fallback_url,
            fallback_method=fallback_method.upper(),
            status_callback=status_callback,
            status_callback_method=status_callback_method.upper(),
            status_callback_events=status_callback_events,
            script=script,
            far_end=far,
            ring_timeout=timeout,
            machine_detection=machine_detection,
        )
        return self._start(setup)

    def _far_end(self, to: str) -> AgentPhone | CustomerPhone:
        if to.startswith("client:"):
            phone = self.agents_by_client.get(to[len("client:") :])
            if phone is not None:
                return phone
        elif to in self.agents_by_number:
            return self.agents_by_number[to]
        return self.customers.get(to, self.default_customer)

    def _start(self, setup: CallSetup) -> Call:
        _ = self.webhooks  # open the session inside the running loop
        call = Call(self, self.new_sid("CA"), setup)
        self.calls[call.sid] = call
        call.start()
        return call

    # ------------------------------------------------------------ HTTP

    def rest_app(self) -> web.Application:
        """Twilio's REST paths (Calls, Recordings) for this emulator, as an aiohttp app."""
        from emulator.rest import create_rest_app

        return create_rest_app(self)

    async def serve(self, host: str = "127.0.0.1", port: int = 8099) -> web.AppRunner:
        """Serve `rest_app()` on host:port (0: any free port) and set `public_url`;
        the caller cleans the returned runner up (`await runner.cleanup()`)."""
        runner = web.AppRunner(self.rest_app())
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        bound = runner.addresses[0][1] if runner.addresses else port
        self.public_url = f"http://{host}:{bound}"
        return runner
