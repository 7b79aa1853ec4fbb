import asyncio
from pathlib import Path

from shoal.network.overlay.host_lock import host_lock


async def test_holders_take_turns(tmp_path: Path) -> None:
    inside = 0
    most = 0

    async def hold() -> None:
        nonlocal inside, most
        async with host_lock("gateway", tmp_path):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(hold() for _ in range(5)))
    assert most == 1


async def test_a_cancelled_waiter_leaves_the_lock_free(tmp_path: Path) -> None:
    async with host_lock("gateway", tmp_path):
        waiter = asyncio.create_task(_take(tmp_path))
        await asyncio.sleep(0.02)
        waiter.cancel()
    async with asyncio.timeout(5):  # a hang guard, not a timing assertion
        await _take(tmp_path)


async def _take(directory: Path) -> None:
    async with host_lock("gateway", directory):
        pass
