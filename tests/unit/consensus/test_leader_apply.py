"""The raft leader applies its own proposals' objects, not their decoding, and only those: an
entry another leader wrote in its place, its own entry after it gave up waiting, and its log
replayed after a restart are decoded, as on any follower. Every manager ends with the same
store, field for field (shoal.store.roundtrip.differences)."""

import asyncio
import datetime as dt

import pytest

from shoal.api.ids import new_id
from shoal.api.objects import Service, StoredObject, Task
from shoal.api.specs import ServiceSpec
from shoal.api.types import TaskState
from shoal.manager.orchestrator.task import new_task
from shoal.raft.node import ORPHAN_TICKS_PER_ELECTION
from shoal.raft.types import CommitUnknown, ProposalDropped
from shoal.store.roundtrip import differences
from tests.unit.consensus.test_replicated_log import Managers
from tests.unit.raft.nodes import TICK


@pytest.fixture
async def managers():
    m = Managers()
    yield m
    await m.stop_all()


def objects(m: Managers, i: int) -> dict[tuple[str, str], StoredObject]:
    return {
        (kind, oid): o for kind, t in m.stores[i]._tables.items() for oid, o in t.objects.items()
    }


def assert_same_stores(m: Managers) -> None:
    """Every manager's store holds the same objects, field for field, types included."""
    first, *rest = m.ids
    mine = objects(m, first)
    for i in rest:
        theirs = objects(m, i)
        assert list(mine) == list(theirs)
        for key, obj in mine.items():
            assert differences(obj, theirs[key]) == [], key
        assert m.stores[i].version == m.stores[first].version


async def test_the_leader_stores_its_own_objects_and_followers_decode_the_same(managers):
    await managers.start_all()
    lead = await managers.leader()
    store = managers.stores[lead]
    svc = Service(
        ID=new_id(),
        Spec=ServiceSpec.model_validate(
            {
                "Name": "web",
                "Labels": {"b": "2", "a": "1"},
                "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Args": ["sleep", "1d"]}},
                "UpdateConfig": {"Parallelism": 2},
            }
        ),
    )
    await managers.settle(asyncio.ensure_future(store.update(lambda tx: tx.create(svc))))
    assert store.view().get(Service, svc.ID) is svc  # the leader's own object, not decoded
    now = dt.datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
    tasks = [new_task(svc, now=now, slot=k + 1) for k in range(3)]
    await managers.settle(
        asyncio.ensure_future(store.batch([lambda tx, t=t: tx.create(t) for t in tasks]))
    )

    def run(tx):  # as the dispatcher moves a task on: a shallow copy, a new status
        t = tx.get(Task, tasks[0].ID).model_copy()
        t.Status = t.Status.model_copy(update={"State": TaskState.RUNNING, "Timestamp": now})
        tx.update(t)

    await managers.settle(asyncio.ensure_future(store.update(run)))
    await managers.settle(
        asyncio.ensure_future(store.update(lambda tx: tx.delete(Task, tasks[1].ID)))
    )
    await managers.until(
        lambda: all(m.store.version == store.version for m in managers.logs.values())
    )
    assert_same_stores(managers)
    for i in managers.ids:
        log = managers.logs[i]
        if i == lead:
            assert log.applied_own == 4 and log.applied_decoded == 0
        else:
            assert log.applied_own == 0 and log.applied_decoded == 4
            assert managers.stores[i].view().get(Service, svc.ID) is not svc


async def test_an_entry_the_next_leader_overwrites_is_not_applied_from_the_objects(managers):
    await managers.start_all()
    old = await managers.leader()
    managers.net.cut.add(old)  # its entry reaches nobody
    lost = Service(ID=new_id(), Spec=ServiceSpec(Name="lost"))
    pending = asyncio.ensure_future(managers.stores[old].update(lambda tx: tx.create(lost)))
    await managers.until(lambda: managers.leadership[old] == [True, False])
    new = await managers.leader()
    await managers.write(new, "won")  # at the index of old's entry
    managers.net.cut.clear()
    with pytest.raises(ProposalDropped, match="overwritten"):
        await managers.settle(pending)
    await managers.until(lambda: managers.names(old) == {"won"})
    assert managers.logs[old].applied_own == 0  # the entry at that index was not its own
    assert not managers.logs[old]._own
    assert_same_stores(managers)


async def test_an_entry_the_next_leader_commits_is_applied_from_the_objects(managers):
    await managers.start_all()
    old = await managers.leader()
    managers.net.deaf.add(old)  # its entry reaches the others; it hears nothing back
    kept = Service(ID=new_id(), Spec=ServiceSpec(Name="kept"))
    pending = asyncio.ensure_future(managers.stores[old].update(lambda tx: tx.create(kept)))
    await managers.until(lambda: managers.leadership[old] == [True, False])
    await managers.until(
        lambda: any(managers.net.nodes[i].leader_ready for i in managers.ids if i != old)
    )
    managers.net.deaf.clear()
    await managers.settle(pending)  # committed by the next leader: the very bytes it encoded
    assert managers.stores[old].view().get(Service, kept.ID) is kept
    assert managers.logs[old].applied_own == 1
    await managers.until(lambda: all(managers.names(i) == {"kept"} for i in managers.ids))
    assert_same_stores(managers)


async def test_an_entry_committed_after_its_writer_gave_up_is_decoded(managers):
    """The writer heard CommitUnknown, and may do what it likes with its objects: the entry,
    committed later by the next leader, is applied as decoded from the log."""
    await managers.start_all()
    old = await managers.leader()
    managers.net.deaf.add(old)
    late = Service(ID=new_id(), Spec=ServiceSpec(Name="late"))
    pending = asyncio.ensure_future(managers.stores[old].update(lambda tx: tx.create(late)))
    await managers.until(lambda: managers.leadership[old] == [True, False])
    election = managers.cfg.election_tick * TICK
    await managers.run((ORPHAN_TICKS_PER_ELECTION + 1) * election)
    with pytest.raises(CommitUnknown):
        await managers.settle(pending)
    late.Spec.Name = "changed by its writer afterwards"  # its own object again
    managers.net.deaf.clear()
    await managers.until(lambda: all(managers.names(i) == {"late"} for i in managers.ids))
    stored = managers.stores[old].view().get(Service, late.ID)
    assert stored is not late and stored.Spec.Name == "late"
    assert managers.logs[old].applied_own == 0
    assert_same_stores(managers)


async def test_a_restart_replays_the_log_decoded(tmp_path):
    m = Managers(disk_dir=tmp_path)
    try:
        await m.start_all()
        lead = await m.leader()
        for k in range(3):
            await m.write(lead, f"svc{k}")
        await m.until(lambda: all(len(m.names(i)) == 3 for i in m.ids))
        assert m.logs[lead].applied_own == 3
        before = {i: objects(m, i) for i in m.ids}
        await m.stop_all()
        m.stores.clear()
        await m.start_all()
        await m.until(lambda: all(len(m.names(i)) == 3 for i in m.ids))
        for i in m.ids:
            assert m.logs[i].applied_own == 0 and m.logs[i].applied_decoded == 3
            after = objects(m, i)
            assert list(after) == list(before[i])
            for key, obj in before[i].items():
                assert differences(obj, after[key]) == [], key
        lead = await m.leader()
        await m.write(lead, "after-restart")
        await m.until(lambda: all("after-restart" in m.names(i) for i in m.ids))
        assert_same_stores(m)
    finally:
        await m.stop_all()
