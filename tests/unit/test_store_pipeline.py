"""Writes through a pipelined proposer (a raft leader): the next proposal is built and
submitted while the ones before it are still in flight, on the state they leave; at most
``max_in_flight`` at once (``DEPTH`` here, whatever the default); one that fails fails those
after it, and the next write starts again from what is applied; reads outside a transaction
see only what is applied."""

import asyncio
from collections import deque
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.api.ids import new_id
from shoal.api.objects import Service, Task
from shoal.api.specs import ServiceSpec
from shoal.raft.types import NotLeader, ProposalDropped
from shoal.store import MemoryStore, memory
from shoal.store.memory import MAX_CHANGES_PER_PROPOSAL
from shoal.store.proposal import PipelinedProposer, Proposal, decode_proposal, encode_proposal


@dataclass
class Chain:
    term: int
    broken: bool = False


class PipelinedLog:
    """Takes proposals at once, in order; commits (applies) the oldest when told; a failure
    fails every proposal in flight after it, as raft's log does."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.term = 1
        self.leading = True
        self.submitted: list[Proposal] = []
        self.waiting: deque[tuple[Proposal, asyncio.Future[None], Chain]] = deque()
        self.failures = 0  # how many times proposals in flight were lost
        # The transaction of each proposal submitted, by position (see ``_write``): the one
        # whose group ran last (``building``), since a group's proposal is submitted as soon
        # as it is built.
        self.building: object | None = None
        self.taken: list[object] = []

    def chain(self) -> Chain | None:
        return Chain(self.term) if self.leading else None

    def continues(self, chain: object) -> bool:
        assert isinstance(chain, Chain)
        return self.leading and not chain.broken and chain.term == self.term

    def submit(self, proposal: Proposal, chain: object) -> asyncio.Future[None]:
        if chain is None or not self.continues(chain):
            raise NotLeader(0)
        assert isinstance(chain, Chain)
        fut = asyncio.get_running_loop().create_future()
        self.submitted.append(proposal)
        self.taken.append(self.building)
        self.waiting.append((proposal, fut, chain))
        return fut

    async def propose(self, proposal: Proposal) -> None:
        raise AssertionError("a pipelined proposer is given proposals through submit")

    def commit_oldest(self) -> Proposal:
        proposal, fut, _ = self.waiting.popleft()
        self.store.apply(proposal)
        fut.set_result(None)
        return proposal

    def fail_oldest(self, err: Exception) -> None:
        """The oldest is lost: so is every one after it (they cannot commit without it)."""
        self.failures += 1
        while self.waiting:
            _, fut, chain = self.waiting.popleft()
            chain.broken = True
            fut.set_exception(err)

    async def commit_all(self) -> None:
        while True:
            for _ in range(20):
                await asyncio.sleep(0)
            if not self.waiting:
                return
            while self.waiting:
                self.commit_oldest()


# The pipeline under test is several proposals deep, whatever the default depth.
DEPTH = 4


def pipelined_store() -> tuple[MemoryStore, PipelinedLog]:
    store = MemoryStore()
    store.max_in_flight = DEPTH
    log = PipelinedLog(store)
    store.proposer = log
    assert isinstance(log, PipelinedProposer)
    return store, log


def service(name: str) -> Service:
    return Service(ID=new_id(), Spec=ServiceSpec(Name=name))


async def turns(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_write_is_submitted_while_the_one_before_is_in_flight_and_sees_it():
    store, log = pipelined_store()
    web = service("web")
    first = asyncio.ensure_future(store.update(lambda tx: tx.create(web)))
    await turns()

    def rename(tx):
        current = tx.get(Service, web.ID)  # in flight, not applied: seen all the same
        changed = current.clone()
        changed.Spec.Name = "web2"
        tx.update(changed)
        return [s.Spec.Name for s in tx.list(Service)]

    second = asyncio.ensure_future(store.update(rename))
    await turns()
    assert [p.version for p in log.submitted] == [1, 2]  # both out, none committed
    assert not first.done() and not second.done()
    assert store.view().services() == []  # reads outside a transaction: what is applied
    assert store.version == 0
    await log.commit_all()
    assert await second == ["web2"]
    assert [s.Spec.Name for s in store.view().services()] == ["web2"]
    assert store.version == 2
    assert store._unapplied == {}


async def test_at_most_max_proposals_are_in_flight():
    store, log = pipelined_store()
    writes = []
    for i in range(DEPTH + 2):
        svc = service(f"s{i}")
        writes.append(asyncio.ensure_future(store.update(lambda tx, svc=svc: tx.create(svc))))
        await turns()
    assert len(log.submitted) == DEPTH
    log.commit_oldest()
    await turns()
    # One settled: room for one more (the rest queued behind the lock, in one proposal).
    assert len(log.submitted) == DEPTH + 1
    await log.commit_all()
    await asyncio.gather(*writes)
    assert len(store.view().services()) == DEPTH + 2
    assert [p.version for p in log.submitted] == list(range(1, len(log.submitted) + 1))


async def test_a_failed_proposal_fails_those_after_it_and_the_next_write_starts_afresh():
    store, log = pipelined_store()
    a, b = service("a"), service("b")
    first = asyncio.ensure_future(store.update(lambda tx: tx.create(a)))
    await turns()
    second = asyncio.ensure_future(
        store.update(lambda tx: (tx.create(b), [s.Spec.Name for s in tx.list(Service)])[1])
    )
    await turns()
    assert len(log.submitted) == 2
    log.fail_oldest(ProposalDropped("lost"))
    for write in (first, second):
        with pytest.raises(ProposalDropped):
            await write
    # Built on what is applied, not on what failed: "a" and "b" are gone.
    names = await asyncio.gather(
        store.update(lambda tx: [s.Spec.Name for s in tx.list(Service)]),
        log.commit_all(),
    )
    assert names[0] == []
    c = service("c")
    third = asyncio.ensure_future(store.update(lambda tx: tx.create(c)))
    await turns()
    assert log.submitted[-1].version == 1  # the failed versions are not skipped
    await log.commit_all()
    await third
    assert [s.Spec.Name for s in store.view().services()] == ["c"]
    assert store._unapplied == {}


async def test_a_new_term_waits_for_the_proposals_in_flight_before_building():
    store, log = pipelined_store()
    a = service("a")
    first = asyncio.ensure_future(store.update(lambda tx: tx.create(a)))
    await turns()
    log.term = 2  # leadership changed (and came back): the chain cannot be followed
    seen = []
    second = asyncio.ensure_future(
        store.update(lambda tx: seen.append(tx.get(Service, a.ID) is not None))
    )
    await turns()
    assert len(log.submitted) == 1 and not seen  # waiting for the first to settle
    log.commit_oldest()
    await first
    await second
    assert seen == [True]  # built once "a" was applied, on a new chain


async def test_a_refused_submission_fails_its_writes_and_changes_nothing():
    store, log = pipelined_store()
    log.leading = False
    with pytest.raises(NotLeader):
        await store.update(lambda tx: tx.create(service("web")))
    assert store.view().services() == [] and store._unapplied == {}
    log.leading = True
    await asyncio.gather(store.update(lambda tx: tx.create(service("db"))), log.commit_all())
    assert [s.Spec.Name for s in store.view().services()] == ["db"]


async def test_a_batch_keeps_several_proposals_in_flight_and_returns_once_all_commit(monkeypatch):
    # Proposals cut by changes only: on a loaded machine 200 creates can take 50 ms.
    monkeypatch.setattr(memory, "MAX_SECONDS_PER_PROPOSAL", 60.0)
    store, log = pipelined_store()
    svc = service("web")
    await asyncio.gather(store.update(lambda tx: tx.create(svc)), log.commit_all())
    tasks = [Task(ID=new_id(), ServiceID=svc.ID) for _ in range(3 * MAX_CHANGES_PER_PROPOSAL)]
    batch = asyncio.ensure_future(store.batch([lambda tx, t=t: tx.create(t) for t in tasks]))
    await turns()
    assert len(log.submitted) == 1 + 3  # three proposals out at once
    assert not batch.done()
    # A transaction reads what is in flight through the indexes too.
    found = asyncio.ensure_future(store.update(lambda tx: len(tx.tasks_of_service(svc.ID))))
    await log.commit_all()
    await batch
    assert await found == len(tasks)
    assert store.view().count(Task) == len(tasks)


async def test_a_batch_whose_proposal_fails_raises_and_builds_no_more():
    store, log = pipelined_store()
    tasks = [Task(ID=new_id(), ServiceID="s") for _ in range(20 * MAX_CHANGES_PER_PROPOSAL)]
    batch = asyncio.ensure_future(store.batch([lambda tx, t=t: tx.create(t) for t in tasks]))
    await turns()
    assert len(log.submitted) == DEPTH
    log.fail_oldest(ProposalDropped("lost"))
    with pytest.raises(ProposalDropped):
        await batch
    assert len(log.submitted) == DEPTH
    assert store.view().count(Task) == 0


async def test_an_update_taken_into_a_proposal_in_flight_waits_for_its_commit_not_the_lock():
    # Queued behind the lock, taken into another caller's proposal: the lock passes on when
    # that proposal is submitted, before it commits; the update's result comes with the commit.
    store, log = pipelined_store()
    ahead = []
    for i in range(DEPTH):
        svc = service(f"s{i}")
        ahead.append(asyncio.ensure_future(store.update(lambda tx, svc=svc: tx.create(svc))))
        await turns()
    late = [service(f"late{i}") for i in range(3)]
    queued = [
        asyncio.ensure_future(store.update(lambda tx, s=s: (tx.create(s), s.Spec.Name)[1]))
        for s in late
    ]
    await turns()
    assert not any(q.done() for q in queued)
    log.commit_oldest()  # room for the queued ones: one proposal for the three
    await turns()
    assert len(log.submitted[-1].changes) == 3
    assert not any(q.done() for q in queued)
    await log.commit_all()
    assert await asyncio.gather(*queued) == ["late0", "late1", "late2"]
    await asyncio.gather(*ahead)


# --- any interleaving ---------------------------------------------------------------------

SLOTS = ["s0", "s1", "s2"]


def _write(slot: str, n: int, ran: dict[int, object], log: PipelinedLog):
    """Create the slot's service, or change it, or (every third write) remove it; remember the
    transaction it ran in. (Its version does not name its proposal: the next proposal takes
    it again after a failure, and after a group that changed nothing in the end, so made no
    proposal.)"""

    def fn(tx):
        ran[n] = log.building = tx
        current = tx.get(Service, slot)
        if current is None:
            tx.create(Service(ID=slot, Spec=ServiceSpec(Name=f"{slot}-{n}")))
        elif n % 3 == 0:
            tx.delete(Service, slot)
        else:
            changed = current.clone()
            changed.Spec.Labels = {"write": str(n)}
            tx.update(changed)
        return n

    return fn


async def _interleave(ops: list[tuple[str, int]]) -> None:
    store, log = pipelined_store()
    committed: list[Proposal] = []
    epochs: list[object] = []  # the transactions of the committed proposals
    writes: dict[int, asyncio.Future] = {}
    ran: dict[int, object] = {}

    def commit_oldest() -> None:
        committed.append(log.commit_oldest())
        proposal = committed[-1]
        epochs.append(next(log.taken[i] for i, p in enumerate(log.submitted) if p is proposal))

    for n, (op, arg) in enumerate(ops):
        if op == "write":
            writes[n] = asyncio.ensure_future(store.update(_write(SLOTS[arg], n, ran, log)))
        elif op == "commit" and log.waiting:
            commit_oldest()
        elif op == "fail" and log.waiting:
            log.fail_oldest(ProposalDropped("lost"))
        elif op == "term":
            log.term += 1  # a new term of this same leader: the chain cannot be followed
        await turns(arg)
    while not all(w.done() for w in writes.values()):
        while log.waiting:
            commit_oldest()
        await turns()
    outcomes = {n: (w.exception() is None) for n, w in writes.items()}

    # Committed one after another with no version skipped: nothing built on a proposal that
    # failed (its version would have been taken again) was committed.
    assert [p.version for p in committed] == list(range(1, len(committed) + 1))

    # A write succeeded if and only if the proposal it ran in was committed, or its group
    # changed nothing in the end (created and removed a service: no proposal).
    def among(tx: object, txs: list[object]) -> bool:
        return any(tx is t for t in txs)

    assert outcomes == {
        n: among(ran.get(n), epochs) or not among(ran.get(n), log.taken) for n in writes
    }
    # What is applied is what the committed proposals give, decoded as a follower would.
    replica = MemoryStore()
    for p in committed:
        replica.apply(decode_proposal(encode_proposal(p)))
    assert replica.snapshot() == store.snapshot()
    assert store._unapplied == {} and not store._in_flight


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["write", "write", "write", "commit", "commit", "fail", "term"]),
            st.integers(min_value=0, max_value=2),
        ),
        max_size=40,
    )
)
def test_any_interleaving_commits_a_gapless_log_the_replicas_agree_with(ops):
    asyncio.run(_interleave(ops))
