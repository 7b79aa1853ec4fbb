"""Whether the node's Docker Engine answers, and what it says about itself (version, labels,
plugins, CPUs, memory, platform), kept fresh for the node's description: a node offers the
``container`` runtime only while its engine is reachable."""

import asyncio
import contextlib
import logging
from typing import Any

from shoal.agent.exec.engine import Engine, EngineError
from shoal.clock import Clock

log = logging.getLogger(__name__)

PERIOD = 10.0
PROBE_TIMEOUT = 5.0
# Probes an engine may miss before the node stops offering containers: an engine that
# restarts must not make the orchestrators move every container task elsewhere at once.
MISSES_ALLOWED = 2


class EngineMonitor:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        period: float = PERIOD,
        misses_allowed: int = MISSES_ALLOWED,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.period = period
        self.misses_allowed = misses_allowed
        self.info: dict[str, Any] | None = None  # the engine's /info while it answers
        self._misses = 0
        self._task: asyncio.Task | None = None

    @property
    def reachable(self) -> bool:
        return self.info is not None

    async def probe(self) -> None:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                info = await self.engine.info()
        except (EngineError, TimeoutError) as err:
            self._misses += 1
            if self.info is not None and self._misses > self.misses_allowed:
                log.warning("Docker Engine at %s unreachable: %s", self.engine.host, err)
                self.info = None
            elif self.info is None and self._misses == 1:
                log.info("no Docker Engine at %s (%s): no container runtime", self.engine.host, err)
            return
        if self.info is None:
            log.info(
                "Docker Engine %s at %s: container runtime available",
                info.get("ServerVersion", "?"),
                self.engine.host,
            )
        self._misses = 0
        self.info = info

    async def start(self) -> None:
        await self.probe()
        self._task = asyncio.create_task(self._loop(), name="engine monitor")

    async def _loop(self) -> None:
        while True:
            await self.clock.sleep(self.period)
            await self.probe()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.engine.close()
