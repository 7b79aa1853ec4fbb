"""Fixtures most unit tests of manager components share: a fake clock, a store on it, and
components running in the background."""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from shoal.clock import FakeClock
from shoal.store import MemoryStore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> Iterator[MemoryStore]:
    s = MemoryStore(clock=clock)
    yield s
    s.close()


@pytest.fixture
async def background() -> AsyncIterator[Callable[[Any], Any]]:
    """``background(component)`` runs ``component.run()`` as a task until the test ends, and
    returns the component."""
    running: list[asyncio.Task] = []

    def start(component: Any) -> Any:
        running.append(asyncio.create_task(component.run()))
        return component

    yield start
    for t in running:
        t.cancel()
    await asyncio.gather(*running, return_exceptions=True)
