"""A raft leader's store keeps several proposals in the log at once (``RaftNode.submit``):
each built on the state the ones before it leave, committed in order or not at all; writes
in flight when leadership is lost fail, and the stores still agree."""

import asyncio

import pytest

from shoal.api.ids import new_id
from shoal.api.objects import Service
from shoal.api.specs import ServiceSpec
from shoal.raft.types import NotLeader, ProposalDropped, RaftError
from tests.unit.consensus.test_replicated_log import Managers

# The pipeline under test is several proposals deep, whatever the default depth.
DEPTH = 4


class DeepManagers(Managers):
    def state_machine(self, i: int):
        log = super().state_machine(i)
        self.stores[i].max_in_flight = DEPTH
        return log


@pytest.fixture
async def managers():
    m = DeepManagers()
    yield m
    await m.stop_all()


def create(name: str):
    svc = Service(ID=new_id(), Spec=ServiceSpec(Name=name))
    return lambda tx: tx.create(svc)


def rename(name: str, to: str):
    def fn(tx):
        current = tx.service_by_name(name)
        changed = current.clone()
        changed.Spec.Name = to
        tx.update(changed)

    return fn


async def test_writes_follow_one_another_into_the_log_before_the_first_commits(managers):
    await managers.start_all()
    lead = await managers.leader()
    store, node = managers.stores[lead], managers.net.nodes[lead]
    others = [i for i in managers.ids if i != lead]
    managers.net.cut.update(others)  # nothing commits meanwhile
    last = node.core.log.last_index()
    writes = [asyncio.ensure_future(store.update(create("web")))]
    await managers.run(0.2)
    # Each built on the one before it, in flight: "web" renamed twice.
    for name, to in (("web", "web2"), ("web2", "web3")):
        writes.append(asyncio.ensure_future(store.update(rename(name, to))))
        await managers.run(0.2)
    assert node.core.log.last_index() == last + 3  # all three appended, none committed
    assert not any(w.done() for w in writes)
    assert managers.names(lead) == set()
    # Beyond the limit, the next waits for room.
    for i in range(DEPTH):
        writes.append(asyncio.ensure_future(store.update(create(f"more{i}"))))
        await managers.run(0.2)
    assert node.core.log.last_index() == last + DEPTH
    managers.net.cut.clear()
    await managers.until(lambda: all(w.done() for w in writes))
    await asyncio.gather(*writes)
    expected = {"web3"} | {f"more{i}" for i in range(DEPTH)}
    await managers.until(lambda: all(managers.names(i) == expected for i in managers.ids))
    assert len({repr(managers.contents(i)) for i in managers.ids}) == 1


async def test_writes_in_flight_when_the_leader_is_deposed_fail_and_the_stores_agree(managers):
    await managers.start_all()
    lead = await managers.leader()
    await managers.write(lead, "before")
    store = managers.stores[lead]
    managers.net.cut.add(lead)  # the others elect another; this one's entries are lost
    writes = [asyncio.ensure_future(store.update(create("lost")))]
    await managers.run(0.1)
    writes.append(asyncio.ensure_future(store.update(rename("lost", "lost2"))))
    await managers.run(0.1)
    new = None

    def elected() -> bool:
        nonlocal new
        ready = [i for i in managers.ids if i != lead and managers.net.nodes[i].leader_ready]
        new = ready[0] if ready else None
        return new is not None

    await managers.until(elected)
    await managers.write(new, "after")
    managers.net.cut.clear()
    await managers.until(lambda: all(w.done() for w in writes))
    for w in writes:
        with pytest.raises(RaftError):
            await w
    assert store._unapplied == {} or not store._in_flight
    await managers.until(
        lambda: all(managers.names(i) == {"before", "after"} for i in managers.ids)
    )
    assert len({repr(managers.contents(i)) for i in managers.ids}) == 1
    # The deposed leader's store took nothing of what failed into later writes: written
    # through the new leader's, a rename of "lost" finds nothing.
    with pytest.raises(AttributeError):
        await managers.settle(
            asyncio.ensure_future(managers.stores[new].update(rename("lost2", "x")))
        )


async def test_a_proposal_refused_by_raft_fails_those_submitted_after_it_unappended(managers):
    await managers.start_all()
    lead = await managers.leader()
    node = managers.net.nodes[lead]
    target = next(i for i in managers.ids if i != lead)
    managers.net.cut.add(target)  # the transfer waits for it: proposals are refused meanwhile
    chain = node.chain()
    assert chain is not None
    transfer = asyncio.ensure_future(node.transfer_leadership(target))
    await managers.run(0.1)
    last = node.core.log.last_index()
    first = node.submit(b'{"Version":99,"Actions":[]}', chain)
    second = node.submit(b'{"Version":100,"Actions":[]}', chain)
    await managers.run(0.1)
    with pytest.raises(ProposalDropped):
        await first
    with pytest.raises(ProposalDropped, match="builds on"):
        await second
    assert node.core.log.last_index() == last
    assert not node.continues(chain)
    with pytest.raises(NotLeader):
        node.submit(b"{}", chain)
    managers.net.cut.clear()
    await managers.until(transfer.done)
    transfer.exception()
