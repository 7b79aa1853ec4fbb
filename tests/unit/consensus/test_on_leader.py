"""on_leader: a write the leader could not make (it lost leadership before proposing, or
the next leader overwrote its entry) is made again of the new leader; one whose outcome is
unknown is not, since making it twice could do it twice."""

import asyncio

import pytest

from shoal.clock import FakeClock
from shoal.manager.consensus.forwarding import on_leader
from shoal.raft.types import CommitUnknown, NotLeader, ProposalDropped


class Leading:
    """The part of a Replica on_leader reads: this manager leads throughout."""

    is_leader = True

    async def leader_channel(self, wait: float) -> None:
        return None


async def _run_with_clock(clock: FakeClock, coro) -> object:
    task = asyncio.ensure_future(coro)
    while not task.done():
        await asyncio.sleep(0)
        await clock.advance(0.05)
    return await task


@pytest.mark.parametrize("first", [NotLeader(), ProposalDropped("raft: entry overwritten")])
async def test_a_write_that_did_not_happen_is_made_again(first: Exception):
    clock = FakeClock()
    calls = []

    async def local() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise first
        return 42

    async def remote(channel) -> int:
        raise AssertionError("not asked of another manager")

    assert await _run_with_clock(clock, on_leader(Leading(), clock, local, remote)) == 42
    assert len(calls) == 2


async def test_a_write_whose_outcome_is_unknown_is_not_made_again():
    clock = FakeClock()
    calls = []

    async def local() -> int:
        calls.append(1)
        raise CommitUnknown()

    async def remote(channel) -> int:
        raise AssertionError("not asked of another manager")

    with pytest.raises(CommitUnknown):
        await _run_with_clock(clock, on_leader(Leading(), clock, local, remote))
    assert len(calls) == 1
