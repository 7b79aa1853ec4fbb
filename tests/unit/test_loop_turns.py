"""A long tick gives the event loop a turn every SLICE of work, and only then (issue 15)."""

import asyncio

import pytest

from shoal import clock
from shoal.clock import BackgroundTurns, LoopTurns


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


async def slices_by_turn(
    turns_class: type[LoopTurns], workers: int, slices: int
) -> dict[int, list[str]]:
    """Which workers ran a slice in each turn of the loop (numbered by a task that counts
    them), for ``workers`` workers of ``slices`` slices each."""
    turn = 0
    ran: dict[int, list[str]] = {}
    done = asyncio.Event()

    async def count_turns() -> None:
        nonlocal turn
        while not done.is_set():
            turn += 1
            await asyncio.sleep(0)

    async def worker(name: str) -> None:
        turns = turns_class()
        for _ in range(slices):
            ran.setdefault(turn, []).append(name)
            await turns.between()

    counter = asyncio.ensure_future(count_turns())
    await asyncio.gather(*(worker(f"w{i}") for i in range(workers)))
    done.set()
    await counter
    return ran


async def test_background_workers_take_their_slices_one_turn_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(clock, "LOOP_SLICE", 0.0)
    ran = await slices_by_turn(BackgroundTurns, workers=3, slices=5)
    # The first slices run as the workers start; after that, one worker a turn.
    assert sorted(ran[min(ran)]) == ["w0", "w1", "w2"]
    later = {t: names for t, names in ran.items() if t != min(ran)}
    assert all(len(names) == 1 for names in later.values())
    assert sum(len(names) for names in later.values()) == 3 * 4
    # Plain turns (the contrast that shows the test can fail): all three in every turn.
    plain = await slices_by_turn(LoopTurns, workers=3, slices=5)
    assert any(len(names) == 3 for t, names in plain.items() if t != min(plain))


async def test_a_background_worker_waiting_on_something_else_holds_back_no_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(clock, "LOOP_SLICE", 0.0)
    never = asyncio.Event()

    async def waits_after_a_slice() -> None:
        await BackgroundTurns().between()
        await never.wait()

    waiting = asyncio.ensure_future(waits_after_a_slice())
    await asyncio.sleep(0)
    turns = BackgroundTurns()
    for _ in range(10):
        await asyncio.wait_for(turns.between(), timeout=1.0)
    assert not waiting.done()
    waiting.cancel()
