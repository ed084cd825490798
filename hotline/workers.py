"""`hotline serve --workers N`: N service processes sharing one port, supervised.

The parent process binds nothing itself. It validates the configuration, starts the
embedded Redis when REDIS_URL is unset (one server for the machine; the workers connect to
its Unix socket), then spawns N worker processes. Each worker runs the whole aiohttp
application on the same host and port with SO_REUSEPORT, so the kernel spreads incoming
connections across them. Nothing a request needs lives in a worker's memory (DESIGN.md):
any worker can answer any webhook of any call.

The parent supervises: a worker that exits while the service is running is logged and
restarted (after a short back-off; a worker that keeps dying at start-up stops the
service with an error instead of spinning). SIGTERM or SIGINT to the parent is forwarded
to every worker, which finishes its requests and closes its Redis connections
(aiohttp's graceful shutdown); workers still alive after `STOP_GRACE_S` are killed.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

from aiohttp import web

from config.redis_conn import EmbeddedRedis, start_embedded
from config.settings import Settings

log = logging.getLogger("hotline.workers")

STOP_GRACE_S = 15.0  # a worker's graceful shutdown before SIGKILL
RESTART_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)  # by consecutive quick deaths of one slot
QUICK_DEATH_S = 2.0  # a worker that dies sooner than this after starting "died young"
MAX_QUICK_DEATHS = 5  # consecutive young deaths of one slot before the service gives up
WORKER_SHUTDOWN_TIMEOUT_S = 10.0  # aiohttp's wait for in-flight requests on SIGTERM
GC_GEN0_THRESHOLD = 10_000

_CTX = multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process needs; picklable (the spawn start method sends it)."""

    index: int
    host: str
    port: int
    redis_url: str | None
    json_logs: bool


def tune_gc() -> None:
    """Fewer, cheaper garbage collections on the request path: what was loaded at start-up
    (modules, configuration, the flow) is moved out of the collector's generations, and the
    youngest generation is collected every 10,000 net allocations instead of 700 (a webhook
    allocates about a thousand objects, nearly all freed by reference counting)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 20)


def tune_gc_after_startup(app: web.Application) -> None:
    """Run `tune_gc` once the application has started (Redis clients, models and caches
    opened in cleanup_ctx are then frozen too)."""

    async def tune(_app: web.Application) -> None:
        tune_gc()

    app.on_startup.append(tune)


def worker_main(spec: WorkerSpec) -> None:
    """Entry point of one worker process: the full service on a shared (reuse_port) socket."""
    from config.loader import load_config
    from config.logs import setup_logging
    from hotline.app import create_app
    from ivr.accounts import FileAccountBackend

    env = dict(os.environ)
    env["PORT"] = str(spec.port)
    if spec.redis_url:
        env["REDIS_URL"] = spec.redis_url
    settings = Settings.from_env(env)
    setup_logging(json_lines=spec.json_logs)
    config = load_config(settings.config_dir)
    accounts = FileAccountBackend.load(settings.config_dir / "accounts.yaml")
    # the same application as the single-process path of `hotline serve` builds
    from hotline.cli import _speech_setup

    app = create_app(settings, config, accounts, speech=_speech_setup())
    tune_gc_after_startup(app)
    log.info("worker started", extra={"worker": spec.index, "pid": os.getpid()})
    web.run_app(
        app,
        host=spec.host,
        port=spec.port,
        reuse_port=True,
        print=None,
        access_log=None,
        shutdown_timeout=WORKER_SHUTDOWN_TIMEOUT_S,
    )


@dataclass
class _Slot:
    index: int
    process: BaseProcess | None = None
    started: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = None


@dataclass
class Supervisor:
    """Starts, watches and stops the worker processes. `run()` blocks until they are gone."""

    workers: int
    host: str
    port: int
    redis_url: str | None
    json_logs: bool = True
    # what each worker process runs (module-level, so the spawn start method can pickle it);
    # the benchmarks run a bare handler under the same supervisor
    target: Callable[[WorkerSpec], None] = worker_main
    _slots: list[_Slot] = field(default_factory=list)
    _stopping: bool = False
    _failed: bool = False

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        self._slots = [_Slot(i) for i in range(self.workers)]

    def pids(self) -> list[int]:
        return [s.process.pid for s in self._slots if s.process and s.process.pid is not None]

    def _spawn(self, slot: _Slot) -> None:
        spec = WorkerSpec(slot.index, self.host, self.port, self.redis_url, self.json_logs)
        process = _CTX.Process(
            target=self.target, args=(spec,), name=f"hotline-worker-{slot.index}"
        )
        process.start()
        slot.process, slot.started, slot.restart_at = process, time.monotonic(), None
        log.info("worker spawned", extra={"worker": slot.index, "pid": process.pid})

    def request_stop(self, signum: int | None = None) -> None:
        if not self._stopping:
            log.info("stopping workers", extra={"signal": signum, "pids": self.pids()})
        self._stopping = True

    def _reap(self, slot: _Slot, now: float) -> None:
        process = slot.process
        assert process is not None
        process.join(timeout=2.0)  # the sentinel fires just before the exit status exists
        code = process.exitcode
        slot.process = None
        if self._stopping:
            return
        young = now - slot.started < QUICK_DEATH_S
        slot.quick_deaths = slot.quick_deaths + 1 if young else 0
        if slot.quick_deaths >= MAX_QUICK_DEATHS:
            log.error(
                "worker keeps dying at start-up; stopping the service",
                extra={"worker": slot.index, "exit_code": code, "deaths": slot.quick_deaths},
            )
            self._failed = True
            self.request_stop()
            return
        delay = RESTART_BACKOFF_S[min(slot.quick_deaths, len(RESTART_BACKOFF_S) - 1)]
        slot.restart_at = now + delay
        log.warning(
            "worker exited unexpectedly; restarting it",
            extra={
                "worker": slot.index,
                "pid": process.pid,
                "exit_code": code,
                "restart_in_s": delay,
            },
        )

    def run_once(self, timeout: float = 0.5) -> None:
        """One supervision step: start due workers, wait up to `timeout`, reap the dead."""
        now = time.monotonic()
        if not self._stopping:
            for slot in self._slots:
                if slot.process is None and (slot.restart_at is None or slot.restart_at <= now):
                    self._spawn(slot)
        live = [s for s in self._slots if s.process is not None]
        if not live:
            time.sleep(min(timeout, 0.05))
            return
        ready = set(wait([s.process.sentinel for s in live if s.process], timeout=timeout))
        now = time.monotonic()
        for slot in live:
            if slot.process is not None and slot.process.sentinel in ready:
                self._reap(slot, now)

    def _terminate_all(self) -> None:
        procs = [s.process for s in self._slots if s.process is not None]
        for p in procs:
            if p.is_alive() and p.pid is not None:
                try:
                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_GRACE_S
        for p in procs:
            p.join(timeout=max(0.0, deadline - time.monotonic()))
        for p in procs:
            if p.is_alive():
                log.error("worker ignored SIGTERM; killing it", extra={"pid": p.pid})
                p.kill()
                p.join(timeout=5)
        for slot in self._slots:
            slot.process = None

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT (0), or until a worker cannot start (1)."""

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            self.request_stop(signum)

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            while not self._stopping:
                self.run_once()
        finally:
            try:
                self._terminate_all()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
        log.info("all workers stopped", extra={"failed": self._failed})
        return 1 if self._failed else 0


def serve(settings: Settings, *, workers: int, host: str) -> int:
    """Run `workers` service processes on settings.port, with one shared embedded Redis when
    no REDIS_URL is configured. Returns the process exit code."""
    embedded: EmbeddedRedis | None = None
    redis_url = settings.redis_url
    if not redis_url:
        embedded = start_embedded(settings.data_dir)
        redis_url = embedded.url
    try:
        supervisor = Supervisor(
            workers=workers,
            host=host,
            port=settings.port,
            redis_url=redis_url,
            json_logs=settings.json_logs,
        )
        return supervisor.run()
    finally:
        if embedded is not None:
            embedded.shutdown()
