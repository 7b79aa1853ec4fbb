"""With slow writes logged (SHOAL_SLOW_WRITE_LOG), a store update that takes the threshold or
more says where its time went: queued for the lock, in whose proposal, committed how long
after; a quicker one says nothing, and with the option off nothing is timed."""

import asyncio
import logging

import pytest

from shoal.api.ids import new_id
from shoal.api.objects import Service
from shoal.api.specs import ServiceSpec
from shoal.clock import FakeClock
from shoal.store import MemoryStore
from shoal.store.proposal import Proposal
from shoal.store.slow_writes import slow_write_threshold


class ClockedProposer:
    """Commits each proposal ``seconds`` of the fake clock after it is made."""

    def __init__(self, store: MemoryStore, clock: FakeClock, seconds: float) -> None:
        self.store, self.clock, self.seconds = store, clock, seconds

    async def propose(self, proposal: Proposal) -> None:
        await self.clock.sleep(self.seconds)
        self.store.apply(proposal)


def create_service(name: str):
    def create(tx) -> None:
        tx.create(Service(ID=new_id(), Spec=ServiceSpec(Name=name)))

    return create


def slow_writes_logged(
    caplog: pytest.LogCaptureFixture, commit_seconds: float
) -> tuple[MemoryStore, FakeClock]:
    """A store whose writes take ``commit_seconds`` to commit, with writes of a second or more
    logged (and the log captured)."""
    caplog.set_level(logging.INFO, logger="shoal.store.memory")
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    store.proposer = ClockedProposer(store, clock, seconds=commit_seconds)
    store.slow_writes = 1.0
    return store, clock


def slow_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("slow write")]


async def run_updates(store: MemoryStore, clock: FakeClock, names: list[str]) -> None:
    updates = [asyncio.ensure_future(store.update(create_service(n))) for n in names]
    await until_done(clock, *updates)


async def until_done(clock: FakeClock, *futures: asyncio.Future) -> None:
    """Let the loop run, then the clock move by a quarter second, until all are done."""
    while True:
        for _ in range(20):
            await asyncio.sleep(0)
        if all(f.done() for f in futures):
            return
        await clock.advance(0.25)


@pytest.mark.parametrize(
    ("value", "threshold"),
    [(None, None), ("", None), ("0", None), ("-1", None), ("soon", None), ("0.5", 0.5)],
)
def test_the_threshold_comes_from_the_environment(value, threshold):
    environ = {} if value is None else {"SHOAL_SLOW_WRITE_LOG": value}
    assert slow_write_threshold(environ) == threshold


async def test_a_slow_write_says_where_its_time_went(caplog):
    store, clock = slow_writes_logged(caplog, commit_seconds=2.0)
    # The first commits alone; the next two wait for the lock and go in one proposal together.
    await run_updates(store, clock, ["first", "second", "third"])
    lines = slow_lines(caplog)
    assert len(lines) == 3
    name = "create_service.<locals>.create"
    assert lines[0] == (
        f"slow write: 2.000 s for {name} (done): queued 0.000 s, 0.000 s of it for room in "
        "flight; in its own proposal of 1 updates, 1 changes, built in 0.000 s; committed and "
        "applied 2.000 s after"
    )
    assert set(lines[1:]) == {
        f"slow write: 4.000 s for {name} (done): queued 2.000 s, 0.000 s of it for room in "
        "flight; in its own proposal of 2 updates, 2 changes, built in 0.000 s; committed and "
        "applied 2.000 s after",
        f"slow write: 4.000 s for {name} (done): queued 2.000 s; in another writer's proposal "
        "of 2 updates, 2 changes, built in 0.000 s; committed and applied 2.000 s after",
    }


async def test_a_write_quicker_than_the_threshold_or_with_the_option_off_says_nothing(caplog):
    store, clock = slow_writes_logged(caplog, commit_seconds=0.5)
    await run_updates(store, clock, ["quick"])
    store.slow_writes = None
    store.proposer = ClockedProposer(store, clock, seconds=5.0)
    await run_updates(store, clock, ["slow, unwatched"])
    assert slow_lines(caplog) == []
    assert {s.Spec.Name for s in store.view().services()} == {"quick", "slow, unwatched"}


async def test_a_failed_write_is_logged_as_failed(caplog):
    store, clock = slow_writes_logged(caplog, commit_seconds=2.0)
    await run_updates(store, clock, ["taken"])

    def clash(tx) -> None:
        raise ValueError("no")

    first = asyncio.ensure_future(store.update(create_service("other")))
    failing = asyncio.ensure_future(store.update(clash))
    await until_done(clock, first, failing)
    with pytest.raises(ValueError):
        failing.result()
    assert "(failed: ValueError)" in slow_lines(caplog)[-1]
