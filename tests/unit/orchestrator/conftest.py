import asyncio
import logging

import pytest

from tests.unit.orchestrator.helpers import Sim, settle


@pytest.fixture
def sim(store, clock) -> Sim:
    return Sim(store, clock)


@pytest.fixture(autouse=True)
def no_errors_logged(caplog):
    """A loop logs and carries on when something fails; in tests that is a bug."""
    caplog.set_level(logging.WARNING, logger="shoal")
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


class Running:
    """Components started in the background, cancelled at the end of the test."""

    def __init__(self, store) -> None:
        self.store = store
        self.tasks: list[asyncio.Task] = []

    async def start(self, *components) -> None:
        for c in components:
            self.tasks.append(asyncio.create_task(c.run()))
        await settle(self.store)

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            try:
                await t
            except asyncio.CancelledError:
                pass
        self.tasks.clear()


@pytest.fixture
async def running(store):
    r = Running(store)
    yield r
    await r.stop()
