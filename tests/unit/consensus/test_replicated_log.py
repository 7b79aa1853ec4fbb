"""The store committing through raft: writes return once committed, every manager's store
applies the same proposals, snapshots carry store and membership, and a restart from disk
recovers both. Several RaftNodes in one event loop on a FakeClock, messages through the codec."""

import asyncio
import gc
import json

import pytest

from shoal.api.ids import new_id
from shoal.api.objects import Service
from shoal.api.specs import ServiceSpec
from shoal.errors import Unavailable
from shoal.manager.consensus.replicated_log import ReplicatedLog
from shoal.raft.core import bootstrap
from shoal.raft.members import RaftMember, encode_context
from shoal.raft.node import RaftNode
from shoal.raft.storage import AsyncStorage, SQLiteStorage
from shoal.raft.types import ConfChange, ConfChangeType, NotLeader, RaftConfig
from shoal.store import MemoryStore
from shoal.store.proposal import Action, Change, Proposal
from tests.unit.raft.nodes import NodeCluster


class Managers(NodeCluster):
    """Managers 1..n: each a MemoryStore whose proposer is a ReplicatedLog over a RaftNode."""

    def __init__(self, n: int = 3, cfg: RaftConfig | None = None, disk_dir=None) -> None:
        ids = list(range(1, n + 1))
        boot = bootstrap({i: encode_context(f"node{i}", f"10.0.0.{i}:2377") for i in ids})
        super().__init__(ids, boot, cfg)
        self.disk_dir = disk_dir
        self.stores: dict[int, MemoryStore] = {}
        self.logs: dict[int, ReplicatedLog] = {}

    def storage(self, i: int) -> AsyncStorage:
        if self.disk_dir is not None:
            return AsyncStorage(SQLiteStorage(self.disk_dir / str(i)), threaded=False)
        return super().storage(i)

    def state_machine(self, i: int) -> ReplicatedLog:
        store = MemoryStore(clock=self.clock)
        log = ReplicatedLog(store)
        store.proposer = log
        self.stores[i], self.logs[i] = store, log
        return log

    def attach(self, i: int, node: RaftNode, sm: ReplicatedLog) -> None:
        sm.attach(node)

    async def leader(self) -> int:
        await self.until(lambda: sum(n.leader_ready for n in self.net.nodes.values()) == 1)
        return next(i for i, n in self.net.nodes.items() if n.leader_ready)

    async def write(self, i: int, name: str) -> Service:
        svc = Service(ID=new_id(), Spec=ServiceSpec(Name=name))
        return await self.settle(
            asyncio.ensure_future(self.stores[i].update(lambda tx: tx.create(svc)))
        )

    def names(self, i: int) -> set[str]:
        return {s.Spec.Name for s in self.stores[i].view().services()}

    def contents(self, i: int) -> dict:
        return self.stores[i].snapshot()


@pytest.fixture
async def managers():
    m = Managers()
    yield m
    await m.stop_all()


async def test_a_write_returns_once_committed_and_every_store_applies_it(managers):
    await managers.start_all()
    lead = await managers.leader()
    others = [i for i in managers.ids if i != lead]
    managers.net.cut.update(others)  # no quorum: the write cannot commit
    svc = Service(ID=new_id(), Spec=ServiceSpec(Name="web"))
    pending = asyncio.ensure_future(managers.stores[lead].update(lambda tx: tx.create(svc)))
    await managers.run(0.5)
    assert not pending.done()
    assert managers.names(lead) == set()  # not applied before it commits
    managers.net.cut.clear()
    await managers.until(pending.done)
    await pending
    assert managers.names(lead) == {"web"}
    await managers.until(lambda: all(managers.names(i) == {"web"} for i in managers.ids))
    assert len({repr(managers.contents(i)) for i in managers.ids}) == 1
    assert all(managers.stores[i].version == managers.stores[lead].version for i in others)


async def test_a_follower_store_refuses_writes_and_changes_nothing(managers):
    await managers.start_all()
    lead = await managers.leader()
    follower = next(i for i in managers.ids if i != lead)
    svc = Service(ID=new_id(), Spec=ServiceSpec(Name="web"))
    with pytest.raises(NotLeader) as err:
        await managers.stores[follower].update(lambda tx: tx.create(svc))
    assert isinstance(err.value, Unavailable)  # 503 through the API
    assert err.value.leader == lead
    await managers.write(lead, "after")  # the store's write lock was released
    assert managers.names(lead) == {"after"}


async def test_members_are_learnt_from_the_log(managers):
    await managers.start_all()
    lead = await managers.leader()
    await managers.write(lead, "x")
    for i in managers.ids:
        log = managers.logs[i]
        assert log.members == {
            j: RaftMember(j, f"node{j}", f"10.0.0.{j}:2377") for j in managers.ids
        }
        assert log.member_by_node("node2") == RaftMember(2, "node2", "10.0.0.2:2377")
        assert log.conf.voters == frozenset(managers.ids)


async def test_a_refused_change_leaves_the_membership_alone():
    log = ReplicatedLog(MemoryStore())
    log.apply_conf_change(1, ConfChange(ConfChangeType.ADD_VOTER, 7, encode_context("a", "h:1")))
    # Raft refuses removing the last voter and re-adding a member: so must the mirror.
    log.apply_conf_change(2, ConfChange(ConfChangeType.REMOVE, 7))
    log.apply_conf_change(3, ConfChange(ConfChangeType.ADD_LEARNER, 7, encode_context("b", "x:2")))
    assert log.members == {7: RaftMember(7, "a", "h:1")}
    assert not log.removed  # a refused removal removes nobody
    # Promoting a learner names nobody new: the member keeps its identity.
    log.apply_conf_change(4, ConfChange(ConfChangeType.ADD_LEARNER, 8, encode_context("c", "y:3")))
    log.apply_conf_change(5, ConfChange(ConfChangeType.ADD_VOTER, 8))
    assert log.members[8] == RaftMember(8, "c", "y:3")
    assert log.conf.voters == {7, 8} and not log.conf.learners


async def test_removed_members_are_remembered_through_a_snapshot():
    log = ReplicatedLog(MemoryStore())
    for raft_id in (7, 8, 9):
        context = encode_context(f"n{raft_id}", f"h:{raft_id}")
        log.apply_conf_change(raft_id, ConfChange(ConfChangeType.ADD_VOTER, raft_id, context))
    log.apply_conf_change(10, ConfChange(ConfChangeType.REMOVE, 9))
    assert log.removed == {9} and set(log.members) == {7, 8}
    later = ReplicatedLog(MemoryStore())
    later.restore(log.snapshot())
    assert later.removed == {9} and later.members == log.members
    # A snapshot of a version before removed members were kept names none.
    old = json.loads(log.snapshot())
    del old["Removed"]
    earlier = ReplicatedLog(MemoryStore())
    earlier.restore(json.dumps(old).encode())
    assert earlier.removed == set() and earlier.members == log.members


def test_a_large_snapshot_is_restored_without_collections_and_frozen(monkeypatch):
    # Every service of a large state is where the collector no longer walks it, and the
    # collector runs again afterwards; a small state is restored as any other allocation.
    monkeypatch.setattr("shoal.manager.consensus.replicated_log.LARGE_SNAPSHOT", 20_000)
    log = ReplicatedLog(MemoryStore())
    for i in range(60):
        spec = ServiceSpec.model_validate({"Name": f"s{i}", "Labels": {"x": "y" * 300}})
        log.store.apply(Proposal(i + 1, [Change(Action.CREATE, Service(ID=new_id(), Spec=spec))]))
    data = log.snapshot()
    assert len(data) >= 20_000
    collections = []
    gc.callbacks.append(lambda phase, info: collections.append(info))
    frozen = gc.get_freeze_count()
    try:
        big = ReplicatedLog(MemoryStore())
        big.restore(data)
        assert collections == [] and gc.isenabled()
        assert gc.get_freeze_count() > frozen
        services = big.store.view().list(Service)
        walked = {id(o) for o in gc.get_objects()}  # the permanent generation's are not
        assert len(services) == 60 and not any(id(s) in walked for s in services)
        frozen = gc.get_freeze_count()
        small = ReplicatedLog(MemoryStore())
        small.restore(ReplicatedLog(MemoryStore()).snapshot())
        assert gc.get_freeze_count() == frozen
    finally:
        gc.callbacks.pop()
        gc.unfreeze()


async def test_a_late_member_catches_up_from_a_snapshot_of_store_and_members():
    m = Managers(cfg=RaftConfig(snapshot_interval=5, keep_entries=2))
    try:
        await m.start_all()
        lead = await m.leader()
        for k in range(12):
            await m.write(lead, f"svc{k}")
        await m.until(lambda: m.net.nodes[lead].core.log.snapshot is not None)
        assert m.net.nodes[lead].core.log.offset > 0  # compacted: entries are gone
        change = ConfChange(ConfChangeType.ADD_LEARNER, 4, encode_context("node4", "10.0.0.4:1"))
        added = asyncio.ensure_future(m.net.nodes[lead].propose_conf_change(change))
        await m.until(added.done)
        await added
        await m.start(4, founder=False)
        await m.until(lambda: m.names(4) == m.names(lead))
        assert m.contents(4) == m.contents(lead)
        assert m.logs[4].members == m.logs[lead].members
        assert m.logs[4].conf.learners == {4}
        # and it keeps applying new writes after the snapshot
        await m.write(lead, "later")
        await m.until(lambda: "later" in m.names(4))
    finally:
        await m.stop_all()


async def test_a_restart_recovers_store_and_members_from_snapshot_and_log(tmp_path):
    m = Managers(cfg=RaftConfig(snapshot_interval=4, keep_entries=1), disk_dir=tmp_path)
    await m.start_all()
    lead = await m.leader()
    for k in range(10):
        await m.write(lead, f"svc{k}")
    await m.until(lambda: all(len(m.names(i)) == 10 for i in m.ids))
    before = {i: m.contents(i) for i in m.ids}
    assert any((tmp_path / str(i) / "snapshots").iterdir() for i in m.ids)
    await m.stop_all()
    # New processes: empty stores, state only from disk.
    m.stores.clear()
    await m.start_all()
    for i in m.ids:
        # What the disk holds as committed is applied without any other manager's help.
        replayed = asyncio.ensure_future(m.net.nodes[i].wait_applied())
        for _ in range(20):
            await asyncio.sleep(0)
        assert replayed.done()
        await replayed
        assert m.contents(i)["Objects"] == before[i]["Objects"]
        assert m.logs[i].members.keys() == set(m.ids)
    lead = await m.leader()
    await m.write(lead, "after-restart")
    await m.until(lambda: all("after-restart" in m.names(i) for i in m.ids))
    await m.stop_all()
