"""A fleet process of simulated nodes runs no full garbage collection: one would hold all of
its nodes at once, which no real machine does (see ``run_process``)."""

import asyncio
import gc

import pytest

from shoal.clock import FakeClock
from shoal.daemon import fleet, old_generation
from shoal.store.gc_tuning import OLD_THRESHOLD


def _runs_old_generation(task: asyncio.Task) -> bool:
    frame = getattr(task.get_coro(), "cr_frame", None)
    return frame is not None and frame.f_globals.get("__name__") == old_generation.__name__


@pytest.fixture
def gc_settings():
    """The process' collector as it was: ``run_process`` tunes it for the whole process."""
    thresholds = gc.get_threshold()
    callbacks = list(gc.callbacks)
    yield
    gc.set_threshold(*thresholds)
    gc.callbacks[:] = callbacks


async def test_a_fleet_process_schedules_no_full_collection(monkeypatch, gc_settings, capsys):
    full: list[int] = []

    def collect(generation: int = 2) -> int:
        if generation == 2:
            full.append(generation)
        return 0

    monkeypatch.setattr(gc, "collect", collect)
    clock = FakeClock()
    beside: list[asyncio.Task] = []

    async def serve_fleet(f: fleet.Fleet) -> None:
        beside.extend(t for t in asyncio.all_tasks() if t is not asyncio.current_task())
        # Well past the first full collection a node's daemon runs, and two periods more.
        await clock.advance(old_generation.CHECK_EVERY + 2 * old_generation.FULL_PERIOD + 1)

    args = fleet.parse_args(["--manager", "127.0.0.1:1", "--token", "SWMTKN-1-x-y"])
    await fleet.run_process(args, clock, serve_fleet)

    assert '"ready": true' in capsys.readouterr().out
    assert beside, "the process runs something beside its nodes (the loop-lag probe)"
    assert not [t.get_name() for t in beside if _runs_old_generation(t)]
    assert full == []
    # Nor does the collector's own schedule reach the old generation (store/gc_tuning.py).
    assert gc.get_threshold()[2] == OLD_THRESHOLD
