"""The asyncio driver: proposals return once applied, reads are linearizable, leadership
changes fail what they must, snapshots and restarts, on a FakeClock."""

import asyncio
import logging
import random

import pytest

from shoal.clock import FakeClock
from shoal.raft import codec
from shoal.raft.core import bootstrap
from shoal.raft.node import RaftNode
from shoal.raft.storage import AsyncStorage, MemoryStorage, SQLiteStorage
from shoal.raft.types import (
    CommitUnknown,
    ConfChange,
    ConfChangeType,
    NotLeader,
    ProposalDropped,
    RaftConfig,
)
from tests.unit.raft.nodes import InstantNet, NodeCluster


class KV:
    """A state machine: a dict of key=value strings."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.applied: list[int] = []
        self.changes: list[ConfChange] = []

    def apply(self, index: int, data: bytes) -> None:
        k, _, v = data.decode().partition("=")
        self.data[k] = v
        self.applied.append(index)

    def apply_conf_change(self, index: int, change: ConfChange) -> None:
        self.changes.append(change)

    def snapshot(self) -> bytes:
        return repr(sorted(self.data.items())).encode()

    def restore(self, data: bytes) -> None:
        self.data = dict(eval(data.decode()))


class Cluster(NodeCluster):
    def __init__(self, ids=(1, 2, 3), cfg: RaftConfig | None = None) -> None:
        super().__init__(list(ids), bootstrap({i: b"" for i in ids}), cfg)
        for i in ids:
            self.disks[i] = MemoryStorage()
        self.sms: dict[int, KV] = {}

    def state_machine(self, i: int) -> KV:
        sm = self.sms[i] = KV()
        return sm

    def leader(self) -> RaftNode:
        ready = [n for n in self.net.nodes.values() if n.leader_ready]
        assert len(ready) == 1
        return ready[0]

    async def leader_ready(self) -> RaftNode:
        await self.until(lambda: sum(n.leader_ready for n in self.net.nodes.values()) == 1)
        return self.leader()

    async def propose(self, node: RaftNode, data: str) -> None:
        await self.settle(asyncio.ensure_future(node.propose(data.encode())))


@pytest.fixture
async def cluster():
    c = Cluster()
    yield c
    await c.stop_all()


async def test_a_leader_is_elected_and_proposals_apply_everywhere(cluster):
    await cluster.start_all()
    leader = await cluster.leader_ready()
    assert cluster.leadership[leader.id] == [True]
    for k in range(5):
        await cluster.propose(leader, f"k{k}=v{k}")
    # applied on the leader when propose returns
    assert cluster.sms[leader.id].data == {f"k{k}": f"v{k}" for k in range(5)}
    await cluster.until(lambda: all(len(sm.applied) == 5 for sm in cluster.sms.values()))
    assert len({repr(sm.data) for sm in cluster.sms.values()}) == 1


async def test_followers_refuse_proposals(cluster):
    await cluster.start_all()
    leader = await cluster.leader_ready()
    follower = next(n for n in cluster.net.nodes.values() if n is not leader)
    with pytest.raises(NotLeader) as err:
        await follower.propose(b"x=1")
    assert err.value.leader == leader.id


async def test_read_barrier_on_a_follower_sees_acknowledged_writes(cluster):
    await cluster.start_all()
    leader = await cluster.leader_ready()
    follower = next(n for n in cluster.net.nodes.values() if n is not leader)
    cluster.net.cut.add(follower.id)
    await cluster.propose(leader, "a=1")  # the follower has not got it
    assert "a" not in cluster.sms[follower.id].data
    cluster.net.cut.clear()
    barrier = asyncio.ensure_future(follower.read_barrier())
    await cluster.until(barrier.done)
    await barrier
    assert cluster.sms[follower.id].data["a"] == "1"


async def test_partitioned_leader_fails_pending_proposals_and_others_take_over(cluster):
    await cluster.start_all()
    old = await cluster.leader_ready()
    cluster.net.cut.add(old.id)
    pending = asyncio.ensure_future(old.propose(b"lost=1"))
    await cluster.until(pending.done)
    with pytest.raises(CommitUnknown):
        await pending
    assert cluster.leadership[old.id] == [True, False]
    await cluster.until(
        lambda: any(n.leader_ready for n in cluster.net.nodes.values() if n is not old)
    )
    new = next(n for n in cluster.net.nodes.values() if n.leader_ready)
    await cluster.propose(new, "b=2")
    cluster.net.cut.clear()
    await cluster.until(lambda: cluster.sms[old.id].data.get("b") == "2")
    assert "lost" not in cluster.sms[old.id].data


async def test_an_entry_the_next_leader_overwrites_is_dropped_not_unknown(cluster):
    """A leader cut off before its entry reached anyone steps down; the next leader writes
    something else at that index: the caller learns nothing happened (safe to try again)."""
    await cluster.start_all()
    old = await cluster.leader_ready()
    cluster.net.cut.add(old.id)
    pending = asyncio.ensure_future(old.propose(b"lost=1"))
    await cluster.until(lambda: cluster.leadership[old.id] == [True, False])
    assert not pending.done()  # it waits to learn what became of its entry
    await cluster.until(
        lambda: any(n.leader_ready for n in cluster.net.nodes.values() if n is not old)
    )
    cluster.net.cut.clear()
    await cluster.until(pending.done)
    with pytest.raises(ProposalDropped, match="overwritten"):
        await pending
    assert "lost" not in cluster.sms[old.id].data


async def test_an_entry_the_next_leader_commits_succeeds(cluster):
    """A leader that hears nothing back (its appends still go out) steps down with its entry
    on the followers; the next leader commits it: the caller is told it succeeded."""
    await cluster.start_all()
    old = await cluster.leader_ready()
    cluster.net.deaf.add(old.id)
    pending = asyncio.ensure_future(old.propose(b"kept=1"))
    await cluster.until(lambda: cluster.leadership[old.id] == [True, False])
    await cluster.until(
        lambda: any(n.leader_ready for n in cluster.net.nodes.values() if n is not old)
    )
    cluster.net.deaf.clear()
    await cluster.until(pending.done)
    await pending  # no error: it was committed
    assert cluster.sms[old.id].data["kept"] == "1"


async def test_transfer_leadership_returns_the_new_leader(cluster):
    await cluster.start_all()
    old = await cluster.leader_ready()
    task = asyncio.ensure_future(old.transfer_leadership())
    await cluster.until(task.done)
    new_id = await task
    assert new_id != old.id
    await cluster.until(lambda: cluster.net.nodes[new_id].leader_ready)
    await cluster.propose(cluster.net.nodes[new_id], "after=1")


async def test_each_waiter_hears_of_the_next_leader_change_however_late_it_waits(cluster):
    await cluster.start_all()
    old = await cluster.leader_ready()
    follower = next(n for n in cluster.net.nodes.values() if n is not old)
    # Three callers look at the leader, then wait: one at once, one from a task not yet
    # started when the change comes, one that waits on the raft driver's side as well.
    at_once = follower.leader_change()
    late = follower.leader_change()
    waiting = asyncio.ensure_future(follower.wait_leader_change())
    task = asyncio.ensure_future(old.transfer_leadership())
    await cluster.until(task.done)
    new_id = await task
    await cluster.until(lambda: cluster.net.nodes[new_id].leader_ready)
    assert at_once.done() and waiting.done()
    await asyncio.wait_for(late, 1.0)  # awaited only now, long after the change
    assert follower.leader_change() is not late  # a new wait is for the next change


async def test_snapshots_are_taken_and_a_restart_restores_them():
    c = Cluster(cfg=RaftConfig(snapshot_interval=5, keep_entries=2))
    try:
        await c.start_all()
        leader = await c.leader_ready()
        for k in range(12):
            await c.propose(leader, f"k{k}={k}")
        await c.until(lambda: all(len(sm.applied) == 12 for sm in c.sms.values()))
        st = c.disks[2].load()
        assert st.snapshot is not None and st.snapshot.index >= 10
        assert st.offset == st.snapshot.index - 2
        await c.stop(2)
        await c.start(2)
        assert c.sms[2].data["k7"] == "7"  # from the snapshot, before any replay
        await c.until(lambda: c.sms[2].data.get("k11") == "11")
    finally:
        await c.stop_all()


async def test_a_snapshot_is_taken_once_the_log_holds_as_many_bytes_as_the_last_one():
    # Entries stay in memory until a snapshot: large ones trigger it by their bytes as well,
    # the floor (snapshot_bytes) or the last snapshot's size, whichever is more; and of the
    # entries kept behind it, no more than keep_bytes.
    cfg = RaftConfig(snapshot_interval=100000, keep_entries=10, snapshot_bytes=3000)
    cfg.keep_bytes = 2500
    c = Cluster(ids=(1,), cfg=cfg)
    try:
        await c.start_all()
        leader = await c.leader_ready()
        for k in range(2):
            await c.propose(leader, f"k{k}=" + "x" * 1000)
        assert c.disks[1].load().snapshot is None  # 2,000 bytes: under the floor
        await c.propose(leader, "k2=" + "x" * 1000)
        st = c.disks[1].load()
        assert st.snapshot is not None and st.snapshot.index == leader.status().applied
        kept = sum(len(e.data) for e in st.entries)
        assert len(st.entries) == 2 and kept <= 2500  # not the 10 entries keep_entries allows
        first = len(st.snapshot.data)
        assert first > 3000  # the next one waits for this many bytes, more than the floor
        while sum(len(e.data) for e in c.disks[1].load().entries) - kept < first - 1004:
            await c.propose(leader, f"k{len(c.sms[1].data)}=" + "x" * 1000)
            assert c.disks[1].load().snapshot.index == st.snapshot.index
        await c.propose(leader, f"k{len(c.sms[1].data)}=" + "x" * 1000)
        assert c.disks[1].load().snapshot.index > st.snapshot.index
    finally:
        await c.stop_all()


async def test_a_settled_tail_is_snapshotted_and_a_restart_replays_none_of_it():
    # A burst far under the size rule's floor, then nothing: once settle_ticks have passed
    # without writes, the tail is snapshotted, with no Ready to ask for it.
    cfg = RaftConfig(snapshot_interval=100000, keep_entries=0, snapshot_bytes=1 << 30)
    cfg.settled_snapshot_bytes = 4000
    cfg.settle_ticks = 20
    c = Cluster(ids=(1,), cfg=cfg)
    try:
        await c.start_all()
        leader = await c.leader_ready()
        for k in range(3):
            await c.propose(leader, f"k{k}=" + "x" * 1000)
        await c.run(3.0)
        assert c.disks[1].load().snapshot is None  # 3,000 bytes: under the floor
        await c.propose(leader, "k3=" + "x" * 1000)
        await c.run(1.0)
        assert c.disks[1].load().snapshot is None  # not settled yet
        await c.run(1.5)
        st = c.disks[1].load()
        assert st.snapshot is not None and st.snapshot.index == leader.status().applied
        await c.stop(1)
        await c.start(1)
        assert c.sms[1].data["k3"] == "x" * 1000 and c.sms[1].applied == []
    finally:
        await c.stop_all()


async def test_a_restart_says_what_it_restored_and_replayed(caplog):
    c = Cluster(ids=(1,), cfg=RaftConfig(snapshot_interval=100000, keep_entries=0))
    try:
        await c.start_all()
        leader = await c.leader_ready()
        await c.propose(leader, "a=1")
        await leader.snapshot_now()
        for k in range(3):
            await c.propose(leader, f"k{k}=" + "x" * 100)
        await c.stop(1)
        caplog.set_level(logging.INFO, logger="shoal.raft.node")
        await c.start(1)
        await c.until(lambda: c.sms[1].data.get("k2") is not None)
        await c.run(0.5)
        said = [r.getMessage() for r in caplog.records]
        restored = [m for m in said if m.startswith("raft: restored a snapshot")]
        assert len(restored) == 1 and "3 entries (0.0 MB) committed after it" in restored[0]
        assert sum(m.startswith("raft: replayed the entries committed") for m in said) == 1
    finally:
        await c.stop_all()


async def test_snapshot_now_snapshots_what_is_applied_and_a_restart_starts_from_it():
    c = Cluster(ids=(1,), cfg=RaftConfig(snapshot_interval=100000, keep_entries=0))
    try:
        await c.start_all()
        leader = await c.leader_ready()
        for k in range(5):
            await c.propose(leader, f"k{k}={k}")
        assert c.disks[1].load().snapshot is None
        await leader.snapshot_now()
        st = c.disks[1].load()
        assert st.snapshot is not None and st.snapshot.index == leader.status().applied
        assert st.entries == [] and st.offset == st.snapshot.index
        await c.stop(1)
        await c.start(1)
        assert c.sms[1].data["k4"] == "4" and c.sms[1].applied == []  # all from the snapshot
    finally:
        await c.stop_all()


async def test_a_new_member_joins_as_learner_and_is_promoted():
    c = Cluster(ids=(1, 2, 3), cfg=RaftConfig(snapshot_interval=4, keep_entries=0))
    try:
        await c.start_all()
        leader = await c.leader_ready()
        for k in range(6):
            await c.propose(leader, f"k{k}={k}")
        await c.start(4, founder=False)

        async def change(kind):
            await c.settle(asyncio.ensure_future(leader.propose_conf_change(ConfChange(kind, 4))))

        await change(ConfChangeType.ADD_LEARNER)
        await c.until(lambda: c.sms[4].data.get("k5") == "5")  # caught up (from a snapshot)
        await change(ConfChangeType.ADD_VOTER)
        await c.until(lambda: c.net.nodes[4].conf.voters == {1, 2, 3, 4})
        assert [ch.node_id for ch in c.sms[leader.id].changes[-2:]] == [4, 4]
    finally:
        await c.stop_all()


async def test_with_sqlite_storage_in_a_thread(tmp_path):
    clock = FakeClock()
    sm = KV()
    node = RaftNode(
        1,
        SQLiteStorage(tmp_path),
        InstantNet(),
        sm,
        clock,
        config=RaftConfig(),
        rng=random.Random(1),
    )
    await node.start(bootstrap({1: b""}))
    try:
        for _ in range(400):
            if node.leader_ready:
                break
            await clock.advance(0.1)
            await asyncio.sleep(0.001)  # let the storage thread finish; no time is asserted
        assert node.leader_ready
        await node.propose(b"a=1")
        assert sm.data == {"a": "1"}
    finally:
        await node.stop()
    st = SQLiteStorage(tmp_path).load()
    assert st.entries[-1].data == b"a=1"
    assert st.hard_state.commit == st.entries[-1].index


async def test_a_cancelled_proposal_is_not_proposed_and_the_node_lives_on(cluster):
    await cluster.start_all()
    leader = await cluster.leader_ready()
    last = leader.core.log.last_index()
    task = asyncio.ensure_future(leader.propose(b"never=1"))
    await asyncio.sleep(0)
    task.cancel()
    await cluster.run(0.5)
    assert leader.core.log.last_index() == last
    await cluster.propose(leader, "after=1")
    assert cluster.sms[leader.id].data == {"after": "1"}


async def test_a_failing_transport_does_not_stop_the_node(cluster):
    await cluster.start_all()
    leader = await cluster.leader_ready()

    def broken(messages):
        raise OSError("connection reset")

    good = leader.transport
    leader.transport = type("T", (), {"send": staticmethod(broken)})()
    pending = asyncio.ensure_future(leader.propose(b"a=1"))
    await cluster.run(0.3)
    leader.transport = good
    await cluster.until(pending.done)
    await pending


async def test_nodes_over_queued_transports():
    from shoal.raft.transport import QueuedTransport

    c = Cluster()
    nodes = {}

    def make_deliver(src):
        async def deliver(peer, payloads):
            if peer in c.net.cut or src in c.net.cut:
                raise ConnectionError("cut")
            for p in payloads:
                nodes[peer].step(codec.decode_message(p))

        return deliver

    transports = {}
    for i in (1, 2, 3):
        t = transports[i] = QueuedTransport(make_deliver(i))
        c.sms[i] = KV()
        node = RaftNode(
            i,
            AsyncStorage(c.disks[i], threaded=False),
            t,
            c.sms[i],
            c.clock,
            rng=random.Random(i),
        )
        t.attach(node)
        nodes[i] = c.net.nodes[i] = node
        await node.start(c.boot)
    try:
        leader = await c.leader_ready()
        await c.propose(leader, "a=1")
        await c.until(lambda: all(sm.data.get("a") == "1" for sm in c.sms.values()))
    finally:
        await c.stop_all()
        for t in transports.values():
            await t.close()


class HeldDisk(AsyncStorage):
    """A disk whose writes of one kind wait until ``release`` is set."""

    def __init__(self, storage: MemoryStorage) -> None:
        super().__init__(storage, threaded=False)
        self.hold = lambda hard_state, entries: False
        self.release = asyncio.Event()
        self.waiting = 0

    async def save(self, hard_state, entries, snapshot=None) -> None:
        if self.hold(hard_state, entries):
            self.waiting += 1
            await self.release.wait()
            self.waiting -= 1
        await super().save(hard_state, entries, snapshot)


class HeldDisksCluster(Cluster):
    def storage(self, i: int) -> AsyncStorage:
        self.held = getattr(self, "held", {})
        disk = self.held[i] = HeldDisk(self.disks[i])
        return disk


def logged(disk: MemoryStorage, data: bytes) -> bool:
    return any(e.data == data for e in disk.load().entries)


async def test_a_leader_sends_its_appends_before_its_own_write_to_disk_ends():
    c = HeldDisksCluster()
    try:
        await c.start_all()
        leader = await c.leader_ready()
        disk = c.held[leader.id]
        disk.hold = lambda hard_state, entries: any(e.data == b"a=1" for e in entries)
        proposed = asyncio.ensure_future(leader.propose(b"a=1"))
        await c.until(lambda: disk.waiting == 1)
        followers = [i for i in c.ids if i != leader.id]
        # While the leader still writes the entry, the followers have it on their disks.
        await c.until(lambda: all(logged(c.disks[i], b"a=1") for i in followers))
        assert not logged(c.disks[leader.id], b"a=1")
        disk.release.set()
        await c.settle(proposed)
        assert c.sms[leader.id].data == {"a": "1"}
    finally:
        await c.stop_all()


async def test_entries_are_applied_while_their_commit_index_alone_is_written():
    c = HeldDisksCluster()
    try:
        await c.start_all()
        leader = await c.leader_ready()
        disk = c.held[leader.id]
        disk.hold = lambda hard_state, entries: hard_state is not None and not entries
        proposed = asyncio.ensure_future(leader.propose(b"b=2"))
        await c.until(proposed.done)
        # Applied and answered; the write of the commit index that covers it not yet over.
        assert c.sms[leader.id].data == {"b": "2"}
        assert disk.waiting == 1
        # The node says the entry is applied (a forwarded write's caller waits to have applied
        # as much before it answers), though the log counts it only once the Ready is over.
        index = c.sms[leader.id].applied[-1]
        assert leader.applied == index > leader.core.log.applied
        disk.release.set()
        await c.until(lambda: disk.waiting == 0)
        assert c.disks[leader.id].load().hard_state.commit >= leader.core.log.applied
    finally:
        await c.stop_all()


async def test_a_slow_entry_says_how_long_each_step_of_its_commit_took(caplog):
    caplog.set_level(logging.INFO, logger="shoal.raft.node")
    c = HeldDisksCluster()
    try:
        await c.start_all()
        leader = await c.leader_ready()
        leader.slow_entries = 1.0
        disk = c.held[leader.id]
        disk.hold = lambda hard_state, entries: any(e.data == b"c=3" for e in entries)
        # The followers take the entry and answer; the leader's own write of it is held for
        # a second and a half (the clock moves), so it is written and sent late.
        proposed = asyncio.ensure_future(leader.propose(b"c=3"))
        await c.until(lambda: disk.waiting == 1)
        await c.run(1.5)
        disk.release.set()
        await c.settle(proposed)
        quick = asyncio.ensure_future(leader.propose(b"d=4"))
        await c.settle(quick)
        lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("raft: entry")]
        index = c.sms[leader.id].applied[-2]
        assert len(lines) == 1, lines  # the quick one is not logged
        assert lines[0].startswith(f"raft: entry {index} applied ")
        shares = [float(x.split(" s ")[0]) for x in lines[0].split(": ")[2].split(", ")]
        total = float(lines[0].split(" applied ")[1].split(" s ")[0])
        assert total >= 1.5 and shares[1] >= 1.5  # held while being written
        assert abs(sum(shares) - total) < 0.01
        assert leader._entry_times == {}
    finally:
        await c.stop_all()
