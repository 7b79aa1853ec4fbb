"""Full garbage collections: when they run, and that a leader among managers waits."""

import asyncio

import pytest

from shoal.clock import FakeClock
from shoal.daemon.old_generation import (
    FullCollectionSchedule,
    collect_old_generation,
    pause_costs_leadership,
)


def test_the_first_look_finds_a_collection_due() -> None:
    assert FullCollectionSchedule(period=600).due(0.0, pause_costs_leadership=False)


def test_the_next_is_due_a_period_after_the_last() -> None:
    schedule = FullCollectionSchedule(period=600)
    schedule.collected(100.0)
    assert not schedule.due(699.0, pause_costs_leadership=False)
    assert schedule.due(700.0, pause_costs_leadership=False)


def test_none_is_due_while_a_pause_costs_the_leadership_nor_a_period_after() -> None:
    schedule = FullCollectionSchedule(period=600)
    assert not schedule.due(0.0, pause_costs_leadership=True)
    schedule.collected(0.0)
    assert not schedule.due(10_000.0, pause_costs_leadership=True)
    # It just stopped leading: the cluster is electing, its agents reconnecting.
    assert not schedule.due(10_030.0, pause_costs_leadership=False)
    assert schedule.due(10_600.0, pause_costs_leadership=False)


@pytest.mark.parametrize(
    ("raft_id", "leader_id", "managers", "costs"),
    [
        (7, 7, 3, True),  # leads other managers
        (7, 7, 1, False),  # a lone manager: nobody to elect another leader
        (7, 9, 3, False),  # a follower
        (7, 0, 3, False),  # no leader known
        (0, 0, 1, False),  # not a raft member yet
    ],
)
def test_who_a_pause_costs_the_leadership(
    raft_id: int, leader_id: int, managers: int, costs: bool
) -> None:
    assert pause_costs_leadership(raft_id, leader_id, managers) is costs


async def test_the_loop_collects_when_due_and_holds_off_while_leading() -> None:
    clock = FakeClock()
    leading = [False]
    collections: list[float] = []

    def collect() -> tuple[int, float]:
        collections.append(clock.monotonic())
        return 0, 0.0

    loop = asyncio.create_task(
        collect_old_generation(
            clock,
            lambda: leading[0],
            FullCollectionSchedule(period=600),
            check_every=30,
            collect=collect,
        )
    )
    try:
        await asyncio.sleep(0)  # the loop starts its first wait
        await clock.advance(30)
        assert collections == [30]
        await clock.advance(600)
        assert collections == [30, 630]
        leading[0] = True
        await clock.advance(1200)
        assert collections == [30, 630]  # held off while it leads
        leading[0] = False
        await clock.advance(570)
        assert collections == [30, 630]  # and for a period after
        await clock.advance(30)
        assert collections == [30, 630, 2430]
    finally:
        loop.cancel()
