"""A long tick gives the event loop a turn every SLICE of work, and only then (issue 15)."""

import asyncio

import pytest

from shoal import clock
from shoal.clock import LoopTurns


async def turns_taken(steps: int) -> list[int]:
    """Which steps other work ran after, for ``steps`` steps each followed by ``between``."""
    ran_after: list[int] = []
    step = 0

    async def other_work() -> None:
        while step < steps:
            ran_after.append(step)
            await asyncio.sleep(0)

    other = asyncio.ensure_future(other_work())
    turns = LoopTurns()
    while step < steps:
        step += 1
        await turns.between()
    await other
    return ran_after


async def test_the_loop_turns_between_steps_once_a_slice_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(clock, "LOOP_SLICE", 0.0)
    assert await turns_taken(3) == [1, 2]


async def test_the_loop_does_not_turn_within_a_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "LOOP_SLICE", 3600.0)
    assert await turns_taken(3) == []
