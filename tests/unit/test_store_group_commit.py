"""Updates that wait for the store's write lock are committed together: one proposal for
those queued, each update as if alone (its own result, its own error, undone alone), in the
order they came; a caller cancelled while waiting is not written; a proposal that fails fails
every update in it."""

import asyncio

import pytest

from shoal.api.ids import new_id
from shoal.api.objects import Service
from shoal.api.specs import ServiceSpec
from shoal.raft.types import ProposalDropped
from shoal.store import MemoryStore
from shoal.store.proposal import Proposal


def make_service(name: str) -> Service:
    return Service(ID=new_id(), Spec=ServiceSpec(Name=name))


class GatedProposer:
    """Applies a proposal once let through (``gate``), or fails it with ``error``."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.gate = asyncio.Event()
        self.proposals: list[Proposal] = []
        self.errors: dict[int, Exception] = {}  # the error of the Nth proposal (from 0)

    async def propose(self, proposal: Proposal) -> None:
        await self.gate.wait()
        self.proposals.append(proposal)
        error = self.errors.get(len(self.proposals) - 1)
        if error is not None:
            raise error
        self.store.apply(proposal)


def gated_store() -> tuple[MemoryStore, GatedProposer]:
    store = MemoryStore()
    proposer = GatedProposer(store)
    store.proposer = proposer
    return store, proposer


async def test_updates_queued_behind_a_commit_go_in_one_proposal_in_order():
    store, proposer = gated_store()
    first = asyncio.ensure_future(store.update(lambda tx: (tx.create(make_service("s0")), 0)[1]))
    await asyncio.sleep(0)  # s0's proposal is out; the others queue behind it

    def create(tx, i):
        tx.create(make_service(f"s{i}"))
        return [s.Spec.Name for s in tx.list(Service)]

    queued = [asyncio.ensure_future(store.update(lambda tx, i=i: create(tx, i))) for i in (1, 2, 3)]
    await asyncio.sleep(0)
    proposer.gate.set()
    assert await first == 0
    # Each saw the ones before it, as if each had been committed alone.
    assert await asyncio.gather(*queued) == [
        ["s0", "s1"],
        ["s0", "s1", "s2"],
        ["s0", "s1", "s2", "s3"],
    ]
    assert [len(p.changes) for p in proposer.proposals] == [1, 3]
    assert store.version == 2


async def test_an_update_that_raises_is_undone_alone_and_its_caller_gets_the_error():
    store, proposer = gated_store()
    first = asyncio.ensure_future(store.update(lambda tx: tx.create(make_service("s0"))))
    await asyncio.sleep(0)

    def create_then_fail(tx):
        tx.create(make_service("broken"))
        raise ValueError("no")

    a = asyncio.ensure_future(store.update(lambda tx: tx.create(make_service("a"))))
    bad = asyncio.ensure_future(store.update(create_then_fail))
    b = asyncio.ensure_future(store.update(lambda tx: tx.create(make_service("b"))))
    await asyncio.sleep(0)
    proposer.gate.set()
    await first
    await a
    await b
    with pytest.raises(ValueError, match="no"):
        await bad
    names = sorted(s.Spec.Name for s in store.view().services())
    assert names == ["a", "b", "s0"]
    assert len(proposer.proposals) == 2


async def test_a_caller_cancelled_while_it_waits_is_not_written():
    store, proposer = gated_store()
    first = asyncio.ensure_future(store.update(lambda tx: tx.create(make_service("s0"))))
    await asyncio.sleep(0)
    gone = asyncio.ensure_future(store.update(lambda tx: tx.create(make_service("gone"))))
    kept = asyncio.ensure_future(store.update(lambda tx: tx.create(make_service("kept"))))
    await asyncio.sleep(0)
    gone.cancel()
    proposer.gate.set()
    await first
    await kept
    assert gone.cancelled()
    assert sorted(s.Spec.Name for s in store.view().services()) == ["kept", "s0"]


async def test_a_proposal_that_fails_fails_every_update_in_it():
    store, proposer = gated_store()
    first = asyncio.ensure_future(store.update(lambda tx: tx.create(make_service("s0"))))
    await asyncio.sleep(0)
    queued = [
        asyncio.ensure_future(store.update(lambda tx, i=i: tx.create(make_service(f"q{i}"))))
        for i in range(3)
    ]
    await asyncio.sleep(0)
    proposer.errors[1] = ProposalDropped("raft: entry overwritten by a new leader")
    proposer.gate.set()
    await first
    results = await asyncio.gather(*queued, return_exceptions=True)
    assert all(isinstance(r, ProposalDropped) for r in results)
    assert [s.Spec.Name for s in store.view().services()] == ["s0"]
    assert [len(p.changes) for p in proposer.proposals] == [1, 3]
    # The store takes writes again afterwards.
    await store.update(lambda tx: tx.create(make_service("after")))
    assert sorted(s.Spec.Name for s in store.view().services()) == ["after", "s0"]


async def test_a_caller_cancelled_while_its_group_commits_leaves_the_others_their_outcome():
    store, proposer = gated_store()
    first = asyncio.ensure_future(store.update(lambda tx: tx.create(make_service("s0"))))
    await asyncio.sleep(0)
    leader = asyncio.ensure_future(store.update(lambda tx: tx.create(make_service("l"))))
    follower = asyncio.ensure_future(store.update(lambda tx: (tx.create(make_service("f")), 7)[1]))
    proposer.gate.set()
    await first
    await asyncio.sleep(0)  # the second group (l and f) is proposed by l's caller
    leader.cancel()
    assert await follower == 7
    await asyncio.sleep(0)
    assert sorted(s.Spec.Name for s in store.view().services()) == ["f", "l", "s0"]
