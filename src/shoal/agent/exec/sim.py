"""The ``sim`` runtime: tasks go through their states without running anything.

A simulated node (see shoal.daemon.fleet) is a real agent whose executor is this one: the
agent's session, heartbeats, assignments and status reports are the real ones, only the
task's work is imagined. Preparing and starting take a configurable time (the latency of
pulling and starting a container), a configurable share of starts fail as a process that
exits non-zero would, and a running task runs until it is shut down (or, with a lifetime,
completes after it). Built for benchmarks with thousands of nodes, so a controller holds
nothing but its task and one event."""

import asyncio
import random
from dataclasses import dataclass, field

from shoal.agent.exec.base import ExitError
from shoal.api.objects import ContainerStatus, Task
from shoal.api.specs import EndpointPortConfig
from shoal.clock import Clock

RUNTIME = "sim"


@dataclass(frozen=True)
class Latency:
    """A delay drawn uniformly from ``low`` to ``high`` seconds."""

    low: float = 0.0
    high: float = 0.0

    @classmethod
    def parse(cls, text: str) -> "Latency":
        """``"0.2"`` (fixed) or ``"0.1-0.5"`` (uniform), in seconds."""
        low, sep, high = text.partition("-")
        try:
            lo = float(low)
            hi = float(high) if sep else lo
        except ValueError:
            raise ValueError(f"invalid latency {text!r}: want SECONDS or LOW-HIGH") from None
        if lo < 0 or hi < lo:
            raise ValueError(f"invalid latency {text!r}: want 0 <= LOW <= HIGH")
        return cls(lo, hi)

    def draw(self, rng: random.Random) -> float:
        return self.low if self.high <= self.low else rng.uniform(self.low, self.high)


@dataclass
class SimSettings:
    """How simulated tasks behave. ``runtimes``: the runtimes the simulated node claims to
    offer (tasks of any of them are simulated), so that services made for real nodes
    (Docker's default ``container`` runtime) are scheduled on simulated ones unchanged."""

    prepare: Latency = field(default_factory=Latency)
    start: Latency = field(default_factory=Latency)
    failure_rate: float = 0.0  # share of starts that fail (exit code 1)
    lifetime: Latency | None = None  # None: a task runs until it is shut down
    runtimes: list[str] = field(default_factory=lambda: ["container", "process"])
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError(f"invalid failure rate {self.failure_rate}: want 0 to 1")


class SimController:
    """One simulated task: each step only waits as long as the settings say. It keeps no
    copy of the task (the agent's task manager has one): with a hundred tasks on each of a
    thousand simulated nodes in a few processes, a copy is about 9 KiB a task."""

    __slots__ = ("_executor", "_stopped")

    def __init__(self, executor: "SimExecutor") -> None:
        self._executor = executor
        self._stopped: asyncio.Event | None = None  # made when first waited on

    def update(self, task: Task) -> None:
        return None

    async def prepare(self) -> None:
        await self._executor.pause(self._executor.settings.prepare)

    async def start(self) -> None:
        ex = self._executor
        await ex.pause(ex.settings.start)
        if ex.settings.failure_rate and ex.rng.random() < ex.settings.failure_rate:
            raise ExitError(1, "simulated failure")

    async def wait(self) -> None:
        lifetime = self._executor.settings.lifetime
        stopped = self._stop_event()
        if lifetime is None:
            await stopped.wait()
            raise ExitError(137)  # as a killed process: waiting ends only when stopped
        sleeper = asyncio.ensure_future(self._executor.pause(lifetime))
        stop = asyncio.ensure_future(stopped.wait())
        try:
            await asyncio.wait({sleeper, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            stop.cancel()
        if stopped.is_set():
            raise ExitError(137)

    async def shutdown(self) -> None:
        self._stop_event().set()

    async def terminate(self) -> None:
        self._stop_event().set()

    async def remove(self) -> None:
        self._stop_event().set()

    def _stop_event(self) -> asyncio.Event:
        if self._stopped is None:
            self._stopped = asyncio.Event()
        return self._stopped

    def container_status(self) -> ContainerStatus | None:
        return None

    def port_status(self) -> list[EndpointPortConfig] | None:
        return None


class SimExecutor:
    """Makes a simulated controller for every task, whatever runtime it names (among those
    the settings offer; the agent's node reports exactly those)."""

    def __init__(self, settings: SimSettings, clock: Clock, rng: random.Random | None = None):
        self.settings = settings
        self.clock = clock
        self.rng = rng or random.Random(settings.seed)

    @property
    def runtimes(self) -> list[str]:
        return list(self.settings.runtimes)

    def controller(self, task: Task) -> SimController:
        return SimController(self)

    async def pause(self, latency: Latency) -> None:
        delay = latency.draw(self.rng)
        if delay > 0:
            await self.clock.sleep(delay)
