"""Fixtures for tests against a real Docker Engine. Without one they are skipped, with the
reason (scripts/test installs and starts an engine, and builds the image, first)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from shoal.agent.exec.base import NodeContext
from shoal.agent.exec.container import ContainerExecutor
from shoal.agent.exec.engine import Engine
from shoal.api.ids import new_id
from shoal.clock import SystemClock
from tests.docker import testimage

IMAGE = testimage.IMAGE


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/docker/" in str(item.fspath):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def docker_engine() -> str:
    """The engine's address, once it answers and has the test image."""
    reason = testimage.unreachable_reason()
    if reason is not None:
        pytest.skip(reason)
    try:
        testimage.build()
    except (OSError, RuntimeError) as err:
        pytest.skip(f"the test image {IMAGE} could not be built: {err}")
    return testimage.engine_host()


@pytest.fixture
async def engine(docker_engine: str) -> AsyncIterator[Engine]:
    eng = Engine(docker_engine)
    yield eng
    await eng.close()


@pytest.fixture
def node() -> NodeContext:
    # A node of its own per test: its containers are told apart by their node label.
    return NodeContext(node_id=new_id(), hostname="host1", addr="127.0.0.1")


@pytest.fixture
async def executor(engine: Engine, node: NodeContext) -> AsyncIterator[ContainerExecutor]:
    ex = ContainerExecutor(engine, node, SystemClock())
    yield ex
    with contextlib.suppress(Exception):
        await ex.reconcile(set())  # nothing a test made outlives it


async def until(check, what: str = "", limit: float = 30):
    """Poll ``check`` until it returns something truthy; the limit only guards a hang."""

    async def poll():
        # Polls state that containers and other tasks change: nothing to wait on.
        while not (result := check()):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return result

    try:
        return await asyncio.wait_for(poll(), limit)
    except TimeoutError:
        raise AssertionError(f"timed out: {what}") from None
